"""What a full disk, a closed or full stdout and a phone's clips do to each command (issue 37).

A full disk is the kernel's own ENOSPC: the temporary file a writer of this process will use is made a link to
/dev/full beforehand (its name is known: hidden, after the target and the process id), so the write of Python or of
ffmpeg fails exactly as on a full disk. Every test checks the exit status, the one error line naming the file that did
not fit, and the files afterwards: nothing under a final name that is not complete, inputs byte for byte.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from flowcli.io import read_flow
from flowcli.io.atomic import temp_path
from tests.cli.test_safety import digest
from tests.support import REPO, H, W, files_in, make_frames, one_error_line, write_clip

needs_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux) for a full disk")


def fill_up(target: Path) -> Path:
    """Make this process's write of ``target`` fail with ENOSPC."""
    tmp = temp_path(target)
    tmp.symlink_to("/dev/full")
    return tmp


def run_filled(targets: list[Path], *args, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """``flowcli ARGS`` in a real process whose writes of ``targets`` fail with ENOSPC (it plants the links for its
    own process id first): what it prints on stderr includes anything ffmpeg, a child, writes there."""
    code = ("import os, sys\n"
            "for t in filter(None, sys.argv[1].split(os.pathsep)):\n"
            "    d, n = os.path.split(t)\n"
            "    s, e = os.path.splitext(n)\n"
            "    os.symlink('/dev/full', os.path.join(d, f'.{s}.tmp{os.getpid()}{e}'))\n"
            "from flowcli.cli import main\n"
            "sys.argv = ['flowcli'] + sys.argv[2:]\n"
            "main()\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCLI_")}
    return subprocess.run([sys.executable, "-c", code, os.pathsep.join(map(str, targets)), *map(str, args)],
                          cwd=REPO, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300)


# ---- full disk --------------------------------------------------------------------------------------------------
@needs_full
def test_video_viz_on_a_full_disk(invoke, tmp_path, weights_file):
    """The reported case: ffmpeg failed to write and the run said "done" with exit 0, leaving an unplayable file."""
    clip = write_clip(tmp_path / "c.mp4", n=5)
    out = tmp_path / "out"
    out.mkdir()
    before = digest(clip)
    fill_up(out / "flow.mp4")
    r = invoke("video", clip, "--viz", out / "flow.mp4", "--max-flow", "3", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {out / 'flow.mp4'}: No space left on device"
    assert files_in(out) == []  # no video, no temporary file
    assert digest(clip) == before


@needs_full
def test_video_viz_on_a_full_disk_in_a_real_process(tmp_path, weights_file):
    """The same through a real process: ffmpeg's own complaint, which it writes on the shared stderr, must not show
    (one line), and the exit status is 1."""
    clip = write_clip(tmp_path / "c.mp4", n=4)
    out = tmp_path / "out"
    out.mkdir()
    done = run_filled([out / "flow.mp4"], "video", clip, "--viz", out / "flow.mp4", "--max-flow", "3",
                      "--weights", weights_file)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [f"error: {out / 'flow.mp4'}: No space left on device"]
    assert files_in(out) == []


@needs_full
def test_video_flo_dir_on_a_full_disk_names_the_file(invoke, tmp_path, weights_file):
    clip = write_clip(tmp_path / "c.mp4", n=6)
    flows = tmp_path / "flows"
    flows.mkdir()
    fill_up(flows / "000002.flo")
    r = invoke("video", clip, "--flo-dir", flows, "--batch-size", "1", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {flows / '000002.flo'}: No space left on device"
    assert files_in(flows) == ["000000.flo", "000001.flo"]  # what was written before is complete
    assert all(read_flow(flows / n)[0].shape == (H, W, 2) for n in files_in(flows))


@needs_full
def test_pair_on_a_full_disk_names_the_file(invoke, pair_files, tmp_path, weights_file):
    out = tmp_path / "out"
    out.mkdir()
    fill_up(out / "f.flo")
    r = invoke("pair", *pair_files, "-o", out / "f.flo", "--viz", out / "v.png", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {out / 'f.flo'}: No space left on device"
    assert files_in(out) == []
    # a picture that does not fit: the flow, written first, is complete; the picture is not there at all
    fill_up(out / "v.png")
    r = invoke("pair", *pair_files, "-o", out / "f.flo", "--viz", out / "v.png", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {out / 'v.png'}: No space left on device"
    assert files_in(out) == ["f.flo"] and read_flow(out / "f.flo")[0].shape == (H, W, 2)


@needs_full
def test_dir_on_a_full_disk_names_the_file_then_resumes(invoke, tmp_path, weights_file):
    frames, out = tmp_path / "frames", tmp_path / "out"
    make_frames(frames, 5)
    out.mkdir()
    before = digest(frames)
    fill_up(out / "frame_0002.flo")
    fill_up(out / "frame_0003.flo")
    r = invoke("dir", frames, "-o", out, "--batch-size", "1", "--weights", weights_file)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("failed: ")] == [
        f"failed: frame_0002.png -> frame_0003.png: {out / 'frame_0002.flo'}: No space left on device",
        f"failed: frame_0003.png -> frame_0004.png: {out / 'frame_0003.flo'}: No space left on device"]
    assert lines[-1] == "error: 2 of 4 pairs failed; disk full: free space and rerun with --resume"
    assert files_in(out) == ["frame_0001.flo", "frame_0004.flo"]
    kept = {n: (out / n).stat().st_mtime_ns for n in files_in(out)}
    # space freed (the links are gone with the failed writes): --resume computes only the two missing pairs
    r = invoke("dir", frames, "-o", out, "--resume", "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["written"], summary["skipped"], summary["failed"]) == (2, 2, 0)
    assert files_in(out) == [f"frame_{i:04d}.flo" for i in range(1, 5)]
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept
    assert digest(frames) == before


@needs_full
def test_json_on_a_full_stdout(tmp_path, pair_files, weights_file):
    """``--json > file`` on a full disk: one line saying that the result did not reach stdout, exit 1."""
    with open("/dev/full", "w") as full:
        done = run_filled([], "pair", *pair_files, "--json", "--weights", weights_file, stdout=full)
    assert done.returncode == 1
    assert done.stderr.splitlines() == ["error: stdout (the --json result): No space left on device"]


# ---- phone clips --------------------------------------------------------------------------------------------------
def test_video_of_a_variable_frame_rate_clip(invoke, tmp_path, weights_file):
    """Six frames shown for uneven times (a phone's clip): five pairs, each between two consecutive decoded frames
    (never a frame and its repetition), and a five-frame color video; --start/--every count decoded frames."""
    from flowcli.api import Estimator
    from flowcli.videoio import count_frames, open_video
    from tests.clips import write_vfr_clip

    clip = tmp_path / "phone.mp4"
    write_vfr_clip(clip)
    decoded = [f for _, f in open_video(clip).frames]
    assert len(decoded) == 6
    est = Estimator(weights_file, device="cpu")
    flows = tmp_path / "flows"
    r = invoke("video", clip, "--viz", tmp_path / "o.mp4", "--flo-dir", flows, "--format", "npy", "--device", "cpu",
               "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["pairs"] == 5
    assert files_in(flows) == [f"{k:06d}.npy" for k in range(5)]
    for k in range(5):
        np.testing.assert_allclose(read_flow(flows / f"{k:06d}.npy")[0], est.estimate(decoded[k], decoded[k + 1]),
                                   atol=1e-3)
    assert count_frames(tmp_path / "o.mp4") == (5, "")
    picked = tmp_path / "picked"
    r = invoke("video", clip, "--flo-dir", picked, "--format", "npy", "--start", "1", "--every", "2",
               "--device", "cpu", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert files_in(picked) == ["000000.npy", "000001.npy"]  # frames 1 -> 3 and 3 -> 5
    np.testing.assert_allclose(read_flow(picked / "000001.npy")[0], est.estimate(decoded[3], decoded[5]), atol=1e-3)


def test_video_of_a_rotated_clip_says_one_line(tmp_path, weights_file):
    """A phone's upright clip (a rotation flag) and --resize, in a real process (where a library's logged warning
    reaches stderr): flow in the upright frames' size, and stderr holds the summary line only (imageio-ffmpeg warned
    that the sizes differ, twice per run)."""
    from tests.clips import ffmpeg

    clip = write_clip(tmp_path / "c.mp4", n=3)
    ffmpeg("-display_rotation", "90", "-i", clip, "-c", "copy", tmp_path / "upright.mp4")
    done = run_filled([], "video", tmp_path / "upright.mp4", "--flo-dir", tmp_path / "f", "--resize", "64",
                      "--weights", weights_file)
    assert done.returncode == 0, done.stderr
    assert read_flow(tmp_path / "f" / "000000.flo")[0].shape == (64, 42, 2)
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("2 pairs of 42x64"), done.stderr


def test_video_of_an_audio_file(invoke, tmp_path, weights_file):
    from tests.clips import ffmpeg

    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", tmp_path / "voice.m4a")
    r = invoke("video", tmp_path / "voice.m4a", "--flo-dir", tmp_path / "f", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r).startswith(f"error: {tmp_path / 'voice.m4a'}: no video stream")
    assert not (tmp_path / "f").exists() or files_in(tmp_path / "f") == []


def _flows(folder: Path, n: int) -> list[Path]:
    from flowcli.io import write_flow

    folder.mkdir()
    paths = [folder / f"f{i}.flo" for i in range(n)]
    for i, p in enumerate(paths):
        write_flow(p, np.random.default_rng(i).normal(0, 2, (32, 48, 2)).astype(np.float32))
    return paths


@needs_full
def test_viz_and_convert_on_a_full_disk(invoke, tmp_path):
    """The other writers: a color video from flow files, color pictures (one fails, the others are written), a
    converted flow file."""
    flows = _flows(tmp_path / "flows", 3)
    out = tmp_path / "out"
    out.mkdir()
    before = digest(flows[0].parent)
    fill_up(out / "v.mp4")
    r = invoke("viz", *flows, "-o", out / "v.mp4")
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {out / 'v.mp4'}: No space left on device"
    assert files_in(out) == []
    fill_up(out / "f1.png")
    r = invoke("viz", *flows, "-o", out)
    assert r.exit_code == 1
    assert f"failed: {out / 'f1.png'}: No space left on device" in r.stderr.splitlines()
    assert files_in(out) == ["f0.png", "f2.png"]
    fill_up(out / "c.npy")
    r = invoke("convert", flows[0], out / "c.npy")
    assert r.exit_code == 1
    assert one_error_line(r) == f"error: {out / 'c.npy'}: No space left on device"
    assert files_in(out) == ["f0.png", "f2.png"]
    assert digest(flows[0].parent) == before


def test_a_clip_cut_short_fails_naming_it_and_keeps_the_pairs_before(invoke, tmp_path, weights_file):
    """A recording whose file ends early (its index at the front, the data cut): the frames before the cut are the
    clip's own, their pairs are written complete, and the run fails in one line saying the clip is damaged, never
    passing it off as a short clip with exit 0."""
    import imageio_ffmpeg

    clip = write_clip(tmp_path / "whole.mp4", n=24)
    indexed = tmp_path / "indexed.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(clip), "-c", "copy",
                    "-movflags", "+faststart", str(indexed)], check=True)
    data = indexed.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:len(data) * 85 // 100])  # the index and the first frames stay whole
    before = digest(cut)
    flows = tmp_path / "flows"
    r = invoke("video", cut, "--flo-dir", flows, "--viz", tmp_path / "o.mp4", "--max-flow", "3", "--weights",
               weights_file)
    assert r.exit_code == 1, r.stderr
    line = one_error_line(r)
    assert str(cut) in line and "damaged" in line
    written = files_in(flows)
    assert 1 <= len(written) < 23 and all(read_flow(flows / n)[0].shape == (H, W, 2) for n in written)
    assert digest(cut) == before
    r = invoke("video", indexed, "--flo-dir", tmp_path / "whole_flows", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr  # the same clip whole: no complaint
    assert len(files_in(tmp_path / "whole_flows")) == 23
