"""What no command may do to the user's files, and how every failure reads (issue 28).

* an output that would replace an input (or another output) is refused before any work, by every command;
* a bad image (a header declaring more pixels than the limit, a broken symbolic link) is one line: the run's error in
  ``pair`` and ``eval``, a failed pair in ``dir`` (the others are written);
* running out of memory is one line naming what to try;
* SIGTERM (real signals, a real process) stops ``dir`` and ``video`` with exit 143 and one line, leaving only
  complete files, and ``dir --resume`` finishes the job; temporary files a killed run left are ignored and, a day
  later, removed;
* ``eval --split final|clean`` on Sintel.

Every test checks the exit status, the message, and the files afterwards: inputs byte for byte, nothing else added.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from flowcli.io import read_flow, write_flow
from tests.support import files_in, make_frames, one_error_line, write_clip

DAY = 24 * 3600


def digest(*roots: Path) -> dict[str, str]:
    """SHA-256 of every file under ``roots`` (hidden ones included), by path."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if p.is_file() and not p.is_symlink():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            elif p.is_symlink():
                out[str(p)] = "-> " + os.readlink(p)
    return out


def forged_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A 60-byte PNG whose header says ``width`` x ``height`` (8-bit RGB), with valid checksums."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


def flow_field(h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (h, w, 2)).astype(np.float32)


# ---- collisions: every command refuses an output that replaces an input or another output ------------------------
def _pair_output_is_input(tmp_path, w):
    a, b = make_frames(tmp_path / "in", 2)
    return ["pair", a, b, "-o", a, "--weights", w], [a]  # .png is a flow format (KITTI): a valid -o


def _pair_two_outputs(tmp_path, w):
    a, b = make_frames(tmp_path / "in", 2)
    return ["pair", a, b, "-o", tmp_path / "x.png", "--viz", tmp_path / "x.png", "--weights", w], [tmp_path / "x.png"]


def _dir_into_frames(tmp_path, w):
    frames = tmp_path / "frames"
    make_frames(frames, 3)
    return ["dir", frames, "-o", frames, "--format", "png", "--weights", w], [frames / "frame_0001.png"]


def _dir_viz_into_frames(tmp_path, w):
    frames = tmp_path / "frames"
    make_frames(frames, 3)
    return ["dir", frames, "-o", tmp_path / "out", "--viz-dir", frames, "--weights", w], [frames / "frame_0001.png"]


def _video_over_clip(tmp_path, w):
    clip = write_clip(tmp_path / "c.mp4", n=3)
    return ["video", clip, "--viz", clip, "--max-flow", "4", "--weights", w], [clip]


def _viz_over_kitti_flow(tmp_path, w):
    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(flows / "a.flo", flow_field())
    write_flow(flows / "k.png", flow_field(seed=1))  # a KITTI flow file: its picture would be k.png
    return ["viz", flows, "-o", flows], [flows / "k.png"]


def _viz_single_over_input(tmp_path, w):
    write_flow(tmp_path / "k.png", flow_field())
    return ["viz", tmp_path / "k.png", "-o", tmp_path / "sub" / ".." / "k.png"], [tmp_path / "k.png"]


def _convert_onto_itself(tmp_path, w):
    write_flow(tmp_path / "a.flo", flow_field())
    (tmp_path / "link.flo").symlink_to(tmp_path / "a.flo")  # the same file under another name
    return ["convert", tmp_path / "a.flo", tmp_path / "link.flo"], [tmp_path / "link.flo"]


COLLISIONS = {
    "pair -o INPUT": _pair_output_is_input,
    "pair -o X --viz X": _pair_two_outputs,
    "dir FRAMES -o FRAMES --format png": _dir_into_frames,
    "dir --viz-dir FRAMES": _dir_viz_into_frames,
    "video CLIP --viz CLIP": _video_over_clip,
    "viz FOLDER -o FOLDER": _viz_over_kitti_flow,
    "viz K.png -o K.png": _viz_single_over_input,
    "convert A A": _convert_onto_itself,
}


@pytest.mark.parametrize("case", list(COLLISIONS))
def test_output_replacing_an_input_is_refused(invoke, tmp_path, weights_file, case):
    (tmp_path / "sub").mkdir()
    args, named = COLLISIONS[case](tmp_path, weights_file)
    before = digest(tmp_path)
    r = invoke(*args)
    assert r.exit_code == 1, r.stderr
    line = one_error_line(r)
    assert "would replace the" in line and any(str(p) in line for p in named), line
    assert digest(tmp_path) == before  # inputs byte for byte, nothing written (no temporary file either)


def _kitti_tree(root: Path) -> Path:
    """A two-pair KITTI 2015 training split: image_2/NNNNNN_10.png and _11.png, flow_occ and flow_noc."""
    for i in range(2):
        a, b = make_frames(root / "training" / "image_2", 2, names=[f"{i:06d}_10.png", f"{i:06d}_11.png"])
        for sub in ("flow_occ", "flow_noc"):
            (root / "training" / sub).mkdir(parents=True, exist_ok=True)
            write_flow(root / "training" / sub / f"{i:06d}_10.png", flow_field(64, 96, seed=i))
    return root


@pytest.mark.parametrize("into", ["image_2", "flow_occ"])
def test_eval_submission_replacing_the_dataset_is_refused(invoke, tmp_path, into):
    root = _kitti_tree(tmp_path / "kitti")
    before = digest(root)
    r = invoke("eval", "--dataset", "kitti2015", "--root", root, "--baseline", "dis", "--write-submission",
               root / "training" / into)
    assert digest(root) == before  # the images (or the ground truth) are still there
    assert r.exit_code == 1 and "would replace the" in one_error_line(r)


# ---- bad images -------------------------------------------------------------------------------------------------
def test_oversized_image_in_pair(invoke, tmp_path, weights_file, monkeypatch):
    a, _ = make_frames(tmp_path / "in", 2)
    big = forged_png(tmp_path / "in" / "big.png")
    before = digest(tmp_path)
    t0 = time.perf_counter()
    r = invoke("pair", a, big, "-o", tmp_path / "out.flo", "--weights", weights_file)
    assert r.exit_code == 1, r.stderr
    line = one_error_line(r)
    assert str(big) in line and "100000x100000" in line and "268,435,456 pixels" in line
    assert "FLOWCLI_MAX_PIXELS" in line
    assert time.perf_counter() - t0 < 20  # refused from the header, nothing decoded
    # the limit is a setting: below the frames' own 96x64 they are refused too
    monkeypatch.setenv("FLOWCLI_MAX_PIXELS", "6000")
    r = invoke("pair", a, a.with_name("frame_0002.png"), "-o", tmp_path / "out.flo", "--weights", weights_file)
    assert r.exit_code == 1 and "96x64" in one_error_line(r) and "6,000 pixels" in one_error_line(r)
    assert digest(tmp_path) == before


def test_oversized_frame_in_dir(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 5)
    big = forged_png(frames / "frame_0003.png")
    before = digest(frames)
    r = invoke("dir", frames, "-o", tmp_path / "out", "--weights", weights_file, "--batch-size", "1")
    assert r.exit_code == 1, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed) == 2 and all(str(big) in ln and "over the limit" in ln for ln in failed)
    assert "frame_0002.png -> frame_0003.png" in failed[0] and "frame_0003.png -> frame_0004.png" in failed[1]
    assert r.stderr.splitlines()[-1] == "error: 2 of 4 pairs failed"
    assert files_in(tmp_path / "out") == ["frame_0001.flo", "frame_0004.flo"]  # the rest written
    assert digest(frames) == before


def test_oversized_image_in_eval(invoke, tmp_path, weights_file):
    root = tmp_path / "pairs"  # the folder layout: one folder per pair, img1, img2 and the true flow
    for name in ("a", "b"):
        make_frames(root / name, 2, names=["img1.png", "img2.png"])
        write_flow(root / name / "gt.flo", np.ones((64, 96, 2), np.float32))
    big = forged_png(root / "b" / "img2.png")
    before = digest(root)
    for method in (["--baseline", "dis"], ["--weights", weights_file]):
        r = invoke("eval", "--dataset", "folder", "--root", root, *method)
        assert r.exit_code == 1, r.stderr
        errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error: ")]
        assert len(errors) == 1 and str(big) in errors[0] and "over the limit" in errors[0]
        assert "Traceback" not in r.stderr and "cv2" not in r.stderr
    assert digest(root) == before


def test_broken_symlink_frame_in_dir(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 5)
    (frames / "frame_0003.png").unlink()
    (frames / "frame_0003.png").symlink_to(tmp_path / "gone.png")
    before = digest(frames)
    r = invoke("dir", frames, "-o", tmp_path / "out", "--weights", weights_file, "--batch-size", "1")
    assert r.exit_code == 1, r.stderr
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed) == 2 and all(str(frames / "frame_0003.png") in ln for ln in failed), failed
    assert r.stderr.splitlines()[-1] == "error: 2 of 4 pairs failed"
    # frame_0002 is not paired with frame_0004 behind the user's back: no frame_0002.flo
    assert files_in(tmp_path / "out") == ["frame_0001.flo", "frame_0004.flo"]
    assert digest(frames) == before


def test_stem_clash_in_viz(invoke, tmp_path):
    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(flows / "a.flo", flow_field(seed=1))
    np.save(flows / "a.npy", flow_field(seed=2))
    before = digest(flows)
    r = invoke("viz", flows, "-o", tmp_path / "pics")
    assert r.exit_code == 0, r.stderr
    assert files_in(tmp_path / "pics") == ["a_flo.png", "a_npy.png"]  # two pictures, not one over the other
    assert "a.flo -> a_flo.png" in r.stderr and "a.npy -> a_npy.png" in r.stderr  # and the user is told the names
    assert "2 of 2 pictures written" in r.stderr
    assert digest(flows) == before


# ---- out of memory ----------------------------------------------------------------------------------------------
def test_out_of_memory_names_what_to_try(invoke, tmp_path, weights_file, monkeypatch):
    import torch

    from flowcli.api import Estimator

    a, b = make_frames(tmp_path / "in", 2)
    before = digest(tmp_path)

    def cuda_oom(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
                                          "capacity of 79.19 GiB of which 1.06 GiB is free. Including non-PyTorch "
                                          "memory, this process has 78.1 GiB memory in use.")

    def host_oom(self, *args, **kwargs):
        np.empty((2 ** 24, 2 ** 24), np.float64)  # numpy's MemoryError: "Unable to allocate 2.00 PiB ..."

    monkeypatch.setattr(Estimator, "estimate_batch", cuda_oom)
    r = invoke("pair", a, b, "-o", tmp_path / "f.flo", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r) == ("error: CUDA out of memory, tried to allocate 2.00 GiB; try --scale 0.5 or --fp16")
    monkeypatch.setattr(Estimator, "estimate_batch", host_oom)
    r = invoke("pair", a, b, "-o", tmp_path / "f.flo", "--weights", weights_file)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert line.startswith("error: out of memory: Unable to allocate") and line.endswith("; try --scale 0.5")
    monkeypatch.setattr(Estimator, "candidates", host_oom)  # what dir runs: its hint names --batch-size
    r = invoke("dir", tmp_path / "in", "-o", tmp_path / "out", "--weights", weights_file)
    assert r.exit_code == 1
    assert one_error_line(r).endswith("; try --scale 0.5 or a smaller --batch-size")
    assert digest(tmp_path / "in") == before
    assert files_in(tmp_path / "out") == []


# ---- SIGTERM, sent to a real process ----------------------------------------------------------------------------
def _start(*args, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWCLI_")}
    return subprocess.Popen([sys.executable, "-m", "flowcli", *map(str, args)], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _terminate_when(proc: subprocess.Popen, ready, timeout: float = 180) -> tuple[str, str]:
    """Send SIGTERM as soon as ``ready()``; returns (stdout, stderr) after the process ended."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (exit {proc.returncode}) before the signal could be sent: {err!r}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("no output appeared in time")
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=120)


def test_sigterm_in_dir_then_resume(invoke, tmp_path, weights_file):
    frames, out = tmp_path / "frames", tmp_path / "out"
    make_frames(frames, 8)
    before = digest(frames)
    proc = _start("dir", frames, "-o", out, "--weights", weights_file, "--batch-size", "1", cwd=tmp_path)
    _, err = _terminate_when(proc, lambda: out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()))
    assert proc.returncode == 143, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted after ") and "--resume" in lines[0], err
    done = files_in(out)
    assert done and len(done) < 7 and not [n for n in done if n.startswith(".")]  # no temporary file left
    for name in done:  # what is there is complete
        assert read_flow(out / name)[0].shape == (64, 96, 2)
    r = invoke("dir", frames, "-o", out, "--resume", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert f"resume: {len(done)} of 7 pairs already done" in r.stderr
    assert files_in(out) == [f"frame_{i:04d}.flo" for i in range(1, 8)]
    assert digest(frames) == before


def test_sigterm_in_video(tmp_path, weights_file):
    (tmp_path / "in").mkdir()
    clip = write_clip(tmp_path / "in" / "c.mp4", n=10)
    out = tmp_path / "out"
    out.mkdir()
    before = digest(clip)
    proc = _start("video", clip, "--viz", out / "flow.mp4", "--max-flow", "4", "--weights", weights_file,
                  "--batch-size", "1", cwd=tmp_path)
    # the encoder's hidden temporary file appears with the first frame; the signal comes while it is being written
    _, err = _terminate_when(proc, lambda: any(out.iterdir()))
    assert proc.returncode == 143, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted"), err
    assert files_in(out) == []  # neither the video nor its temporary file
    assert digest(clip) == before


def test_stale_temporary_files_are_ignored_then_removed(invoke, tmp_path):
    """A process killed outright (SIGKILL) leaves its temporary file: readers skip it (hidden), and a later run
    writing into that folder removes it once it is a day old, never a recent one (a run still going)."""
    from flowcli.frames import list_frames
    from flowcli.jobs.pictures import expand_flow_inputs

    frames = tmp_path / "frames"
    make_frames(frames, 2)
    shutil.copy(frames / "frame_0002.png", frames / ".frame_0003.tmp4242.png")  # a half-written frame
    assert [p.name for p in list_frames(frames)] == ["frame_0001.png", "frame_0002.png"]
    flows = tmp_path / "flows"
    flows.mkdir()
    write_flow(flows / "a.flo", flow_field())
    (flows / ".b.tmp4242.flo").write_bytes(b"PIEH")  # cut short
    assert expand_flow_inputs([flows]) == [flows / "a.flo"]

    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".flow.tmp4242.mp4", out / ".a.tmp17.png"]
    fresh = out / ".flow.tmp4343.mp4"
    for p in stale + [fresh]:
        p.write_bytes(b"partial")
    for p in stale:
        os.utime(p, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    (out / ".notes.txt").write_text("the user's own hidden file")
    r = invoke("viz", flows, "-o", out / "flow.mp4", "--fps", "5")
    assert r.exit_code == 0, r.stderr
    assert files_in(out) == [".flow.tmp4343.mp4", ".notes.txt", "flow.mp4"]


# ---- Sintel passes as splits ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sintel_tree(real_dir, tmp_path_factory):
    from tests.support import build_sintel, load_real

    root, _, _ = build_sintel(tmp_path_factory.mktemp("sintel") / "sintel", load_real(real_dir))
    return root


@pytest.mark.parametrize("split", ["final", "clean"])
def test_sintel_split_names_the_pass(invoke, sintel_tree, split):
    before = digest(sintel_tree)
    r = invoke("eval", "--dataset", "sintel", "--split", split, "--root", sintel_tree, "--baseline", "dis",
               "--json", "-")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    res = doc["methods"]["dis"]
    assert (doc["split"], doc["passes"]) == ("training", split)
    assert res["pairs"] == 3 and all(im["name"].startswith(f"{split}/") for im in res["per_image"])
    rows = [ln for ln in r.stderr.splitlines() if "DIS medium" in ln]
    assert len(rows) == 1 and f"sintel training {split}" in rows[0]  # the table's row names the pass
    other = "clean" if split == "final" else "final"
    r = invoke("eval", "--dataset", "sintel", "--split", split, "--pass", other, "--root", sintel_tree,
               "--baseline", "dis")
    assert r.exit_code in (1, 2) and f"split '{split}' is a pass" in one_error_line(r)
    assert digest(sintel_tree) == before
