"""flowcli video: a real clip through the streaming pipeline, options, and broken inputs."""
from __future__ import annotations

import json

import imageio.v2 as imageio
import pytest

from flowcli.io import read_flow
from tests.support import H, W, files_in, one_error_line, write_clip


def probe(path):
    """(frame count, fps, (width, height)) of a video, read back with imageio."""
    reader = imageio.get_reader(str(path))
    try:
        meta = reader.get_meta_data()
        return reader.count_frames(), meta["fps"], tuple(meta["size"])
    finally:
        reader.close()


def test_video_viz_frame_count_and_fps(invoke, clip, tmp_path, weights_file):
    out = tmp_path / "out.mp4"
    r = invoke("video", clip, "--viz", out, "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert probe(out) == (5, 7.0, (W, H))  # 6 frames -> 5 pairs, at the source fps
    summary = json.loads(r.stdout)
    assert summary["pairs"] == 5 and summary["max_flow"] > 0


def test_video_side_by_side_and_flo_dir(invoke, clip, tmp_path, weights_file):
    out = tmp_path / "sbs.mp4"
    flows = tmp_path / "flows"
    r = invoke("video", clip, "--viz", out, "--side-by-side", "--flo-dir", flows, "--max-flow", "4",
               "--batch-size", "2", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert probe(out) == (5, 7.0, (2 * W, H))
    assert files_in(flows) == [f"{i:06d}.flo" for i in range(5)]
    assert read_flow(flows / "000004.flo")[0].shape == (H, W, 2)


def test_video_selection_and_resize(invoke, tmp_path, weights_file):
    clip = write_clip(tmp_path / "long.mp4", n=9, fps=12)
    out = tmp_path / "sel.mp4"
    flows = tmp_path / "flows"
    # frames 1, 3, 5 (start 1, every 2, 3 frames) -> 2 pairs at 6 fps, long side 64
    r = invoke("video", clip, "--viz", out, "--flo-dir", flows, "--format", "npy", "--start", "1", "--every", "2",
               "--frames", "3", "--resize", "64", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    n, fps, size = probe(out)
    assert (n, fps, size) == (2, 6.0, (64, 42))
    assert read_flow(flows / "000001.npy")[0].shape == (42, 64, 2)


def test_video_flo_dir_only_skips_first_pass(invoke, clip, tmp_path, weights_file):
    r = invoke("video", clip, "--flo-dir", tmp_path / "f", "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["max_flow"] is None
    assert len(files_in(tmp_path / "f")) == 5


def test_video_long_clip_recomputes_instead_of_caching(invoke, tmp_path, weights_file, monkeypatch):
    """Past the memory budget the first pass keeps no flows; the main pass streams and recomputes."""
    import flowcli.jobs.video as video

    monkeypatch.setattr(video, "KEEP_BYTES", 1)
    clip = write_clip(tmp_path / "c.mp4", n=4)
    out = tmp_path / "o.mp4"
    r = invoke("-v", "video", clip, "--viz", out, "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert "kept" not in r.stderr
    assert probe(out)[0] == 3


def test_video_nothing_to_write(invoke, clip, weights_file):
    r = invoke("video", clip, "--weights", weights_file)
    assert r.exit_code == 2
    one_error_line(r)


def test_video_missing_clip(invoke, tmp_path, weights_file):
    r = invoke("video", tmp_path / "nope.mp4", "--viz", tmp_path / "o.mp4", "--weights", weights_file)
    assert r.exit_code == 2
    assert "nope.mp4" in one_error_line(r)


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100, "truncated"])
def test_video_corrupt_or_empty(invoke, clip, tmp_path, weights_file, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(clip.read_bytes()[:600] if content == "truncated" else content)
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("video", bad, "--viz", out / "o.mp4", "--flo-dir", out / "f", "--weights", weights_file)
    assert r.exit_code == 1
    assert "bad.mp4" in one_error_line(r)
    assert files_in(out) == []


def test_video_single_frame(invoke, tmp_path, weights_file):
    one = write_clip(tmp_path / "one.mp4", n=1)
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("video", one, "--viz", out / "o.mp4", "--weights", weights_file)
    assert r.exit_code == 1
    assert "fewer than 2 frames" in one_error_line(r)
    assert files_in(out) == []


def test_video_unknown_extension(invoke, clip, tmp_path, weights_file):
    r = invoke("video", clip, "--viz", tmp_path / "o.gif", "--weights", weights_file)
    assert r.exit_code == 2
    assert "o.gif" in one_error_line(r)


def test_video_unwritable_output(invoke, clip, tmp_path, weights_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke("video", clip, "--viz", blocker / "o.mp4", "--weights", weights_file)
    assert r.exit_code == 1
    one_error_line(r)


def test_video_interrupt_leaves_no_partial_video(invoke, tmp_path, weights_file, monkeypatch):
    from flowcli.api import Estimator

    clip = write_clip(tmp_path / "c.mp4", n=6)
    calls = {"n": 0}
    original = Estimator.flow_tensor

    def flaky(est, a, b, *rest):
        calls["n"] += 1
        if calls["n"] > 2:
            raise KeyboardInterrupt
        return original(est, a, b, *rest)

    monkeypatch.setattr(Estimator, "flow_tensor", flaky)
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("video", clip, "--viz", out / "o.mp4", "--max-flow", "3", "--batch-size", "1",
               "--weights", weights_file)
    assert r.exit_code == 130
    assert files_in(out) == []
