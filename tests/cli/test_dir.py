"""flowcli dir: natural order, names, formats, resume, shards, bad frames, interrupts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flowcli.api import Estimator
from flowcli.io import read_flow, read_image, write_image
from tests.support import H, W, files_in, make_frames, one_error_line


def test_dir_natural_order_and_names(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 3, names=["frame10.png", "frame2.png", "frame1.png"])
    out = tmp_path / "out"
    r = invoke("dir", frames, "-o", out, "--weights", weights_file, "--viz-dir", tmp_path / "viz", "--json")
    assert r.exit_code == 0, r.stderr
    # natural order: frame1 -> frame2 -> frame10, so the pairs are (1, 2) and (2, 10)
    assert files_in(out) == ["frame1.flo", "frame2.flo"]
    assert files_in(tmp_path / "viz") == ["frame1.png", "frame2.png"]
    for name in ("frame1.flo", "frame2.flo"):
        flow, _ = read_flow(out / name)
        assert flow.shape == (H, W, 2)
    assert read_image(tmp_path / "viz" / "frame1.png").shape == (H, W, 3)
    summary = json.loads(r.stdout)
    assert (summary["pairs"], summary["written"], summary["failed"]) == (2, 2, 0)


@pytest.mark.parametrize("fmt", ["png", "npy"])
def test_dir_formats(invoke, frames_dir, tmp_path, weights_file, fmt):
    out = tmp_path / "out"
    r = invoke("dir", frames_dir, "-o", out, "--format", fmt, "--batch-size", "2", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert files_in(out) == [f"frame_{i:04d}.{fmt}" for i in (1, 2, 3)]
    assert read_flow(out / f"frame_0002.{fmt}")[0].shape == (H, W, 2)


def test_dir_batched_equals_single(invoke, frames_dir, tmp_path, weights_file):
    names = [f"frame_{i:04d}.npy" for i in (1, 2, 3)]
    for batch in ("1", "3"):
        r = invoke("dir", frames_dir, "-o", tmp_path / f"b{batch}", "--batch-size", batch, "--format", "npy",
                   "--device", "cpu", "--weights", weights_file)
        assert r.exit_code == 0, r.stderr
        assert files_in(tmp_path / f"b{batch}") == names
    for name in names:
        a, _ = read_flow(tmp_path / "b1" / name)
        b, _ = read_flow(tmp_path / "b3" / name)
        assert a.shape == (H, W, 2) and np.isfinite(a).all()
        np.testing.assert_allclose(a, b, atol=1e-3)


def _estimates(weights, pairs):
    """Estimator.estimate on each (frame1, frame2) of ``pairs`` (paths), on the CPU."""
    est = Estimator(weights, device="cpu")
    return [est.estimate(read_image(a), read_image(b)) for a, b in pairs]


def test_dir_outputs_are_the_estimates_of_consecutive_frames(invoke, tmp_path, weights_file):
    """Each output is Estimator.estimate of its own pair, in that order: frame k to frame k+1 (not k+1 to k, not a
    neighbouring pair), whatever the batch."""
    frames = make_frames(tmp_path / "frames", 4)
    out = tmp_path / "out"
    r = invoke("dir", tmp_path / "frames", "-o", out, "--format", "npy", "--batch-size", "2", "--device", "cpu",
               "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    expected = _estimates(weights_file, list(zip(frames[:-1], frames[1:])))
    backward = _estimates(weights_file, [(frames[1], frames[0])])[0]
    assert np.abs(expected[0] - backward).max() > 0.1  # a pair computed backwards would be caught
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # and so would a shifted pairing
    assert files_in(out) == ["frame_0001.npy", "frame_0002.npy", "frame_0003.npy"]
    for k, flow in enumerate(expected):
        np.testing.assert_allclose(read_flow(out / f"frame_{k + 1:04d}.npy")[0], flow, atol=1e-3)


def test_dir_shards_split_the_work(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 6)
    out = tmp_path / "out"
    for i in range(2):
        r = invoke("dir", frames, "-o", out, "--shard", f"{i}/2", "--weights", weights_file)
        assert r.exit_code == 0, r.stderr
        if i == 0:  # pairs 0, 2, 4 -> frames 1, 3, 5
            assert files_in(out) == ["frame_0001.flo", "frame_0003.flo", "frame_0005.flo"]
    assert files_in(out) == [f"frame_{i:04d}.flo" for i in range(1, 6)]


@pytest.mark.parametrize("spec", ["2/2", "x", "1/0"])
def test_dir_bad_shard(invoke, frames_dir, tmp_path, weights_file, spec):
    r = invoke("dir", frames_dir, "-o", tmp_path / "out", "--shard", spec, "--weights", weights_file)
    assert r.exit_code == 2
    one_error_line(r)


def test_dir_pairs_file(invoke, tmp_path, weights_file):
    """Each line's pair, in the line's order: (1, 3) and its reverse (3, 1) are two different flows."""
    frames = make_frames(tmp_path / "frames", 4)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("# forward and backward\nframe_0001.png frame_0003.png\nframe_0003.png, frame_0001.png\n\n")
    out = tmp_path / "out"
    r = invoke("dir", tmp_path / "frames", "--pairs", pairs, "-o", out, "--format", "npy", "--device", "cpu",
               "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert files_in(out) == ["frame_0001.npy", "frame_0003.npy"]
    forward, backward = _estimates(weights_file, [(frames[0], frames[2]), (frames[2], frames[0])])
    assert np.abs(forward - backward).max() > 0.1
    np.testing.assert_allclose(read_flow(out / "frame_0001.npy")[0], forward, atol=1e-3)
    np.testing.assert_allclose(read_flow(out / "frame_0003.npy")[0], backward, atol=1e-3)


def test_dir_pairs_file_motion_with_the_bundled_weights(invoke, tmp_path):
    """The same with trained weights, where the motion itself can be checked: the frames move 1 px left each, so
    the flow of (1, 3) is 2 px left and that of (3, 1) 2 px right."""
    make_frames(tmp_path / "frames", 4)
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("frame_0001.png frame_0003.png\nframe_0003.png frame_0001.png\n")
    out = tmp_path / "out"
    r = invoke("dir", tmp_path / "frames", "--pairs", pairs, "-o", out, "--recipe", "plain", "--device", "cpu")
    if r.exit_code == 1 and "no bundled weights" in r.stderr:
        pytest.skip("no bundled weights in this checkout")
    assert r.exit_code == 0, r.stderr
    inner = (slice(8, -8), slice(8, -8))
    for name, u in (("frame_0001.flo", -2.0), ("frame_0003.flo", 2.0)):
        flow = read_flow(out / name)[0][inner]
        assert abs(float(flow[..., 0].mean()) - u) < 0.3 and abs(float(flow[..., 1].mean())) < 0.3, name


def test_dir_bad_frame_is_skipped_and_reported(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 5)
    (frames / "frame_0003.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    r = invoke("dir", frames, "-o", out, "--weights", weights_file)
    assert r.exit_code == 1
    # pairs (2,3) and (3,4) need the bad frame; (1,2) and (4,5) are kept
    assert files_in(out) == ["frame_0001.flo", "frame_0004.flo"]
    lines = r.stderr.strip().splitlines()
    assert sum("frame_0003.png" in ln for ln in lines if ln.startswith("failed:")) == 2
    assert lines[-1] == "error: 2 of 4 pairs failed"


def test_dir_size_mismatch_fails_that_pair(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 3)
    write_image(frames / "frame_0004.png", np.zeros((H, W + 32, 3), np.uint8))
    out = tmp_path / "out"
    r = invoke("dir", frames, "-o", out, "--weights", weights_file)
    assert r.exit_code == 1
    assert files_in(out) == ["frame_0001.flo", "frame_0002.flo"]
    assert "1 of 3 pairs failed" in r.stderr


def test_dir_one_frame_is_a_usage_error(invoke, tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 1)
    r = invoke("dir", frames, "-o", tmp_path / "out", "--weights", weights_file)
    assert r.exit_code == 2
    assert "1 image" in one_error_line(r)
    assert not (tmp_path / "out").exists()


def test_dir_missing_folder(invoke, tmp_path, weights_file):
    r = invoke("dir", tmp_path / "nope", "-o", tmp_path / "out", "--weights", weights_file)
    assert r.exit_code == 2
    assert "nope" in one_error_line(r)


def test_dir_unwritable_output(invoke, frames_dir, tmp_path, weights_file):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = invoke("dir", frames_dir, "-o", blocker / "out", "--weights", weights_file)
    assert r.exit_code == 1
    assert "out" in one_error_line(r)


class Interrupt:
    """Patch Estimator.flow_tensor to raise ``exc`` on call number ``after + 1``."""

    def __init__(self, monkeypatch, after: int, exc=KeyboardInterrupt):
        self.calls = 0
        original = Estimator.flow_tensor

        def patched(est, a, b, *rest):
            self.calls += 1
            if self.calls > after:
                raise exc()
            return original(est, a, b, *rest)

        monkeypatch.setattr(Estimator, "flow_tensor", patched)


def test_dir_interrupt_then_resume(invoke, tmp_path, weights_file, monkeypatch):
    frames = tmp_path / "frames"
    make_frames(frames, 6)
    out = tmp_path / "out"
    with monkeypatch.context() as m:
        Interrupt(m, after=2)
        r = invoke("dir", frames, "-o", out, "--batch-size", "1", "--weights", weights_file)
    assert r.exit_code == 130
    assert "--resume" in one_error_line(r)
    done = files_in(out)
    assert done == ["frame_0001.flo", "frame_0002.flo"]  # only complete outputs, no temporary files
    for name in done:
        assert read_flow(out / name)[0].shape == (H, W, 2)
    before = {n: (out / n).stat().st_mtime_ns for n in done}

    counter = Interrupt(monkeypatch, after=10 ** 6)
    r = invoke("dir", frames, "-o", out, "--resume", "--batch-size", "1", "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert counter.calls == 3  # only the missing pairs were computed
    assert json.loads(r.stdout)["skipped"] == 2
    assert files_in(out) == [f"frame_{i:04d}.flo" for i in range(1, 6)]
    assert {n: (out / n).stat().st_mtime_ns for n in done} == before


def test_dir_resume_redoes_a_corrupt_output(invoke, frames_dir, tmp_path, weights_file):
    out = tmp_path / "out"
    assert invoke("dir", frames_dir, "-o", out, "--weights", weights_file).exit_code == 0
    (out / "frame_0002.flo").write_bytes(b"PIEH")  # truncated by some other tool
    r = invoke("dir", frames_dir, "-o", out, "--resume", "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 1
    assert read_flow(out / "frame_0002.flo")[0].shape == (H, W, 2)


def test_dir_inference_error_fails_items_not_the_job(invoke, frames_dir, tmp_path, weights_file, monkeypatch):
    Interrupt(monkeypatch, after=1, exc=lambda: RuntimeError("out of memory"))
    out = tmp_path / "out"
    r = invoke("dir", frames_dir, "-o", out, "--batch-size", "1", "--weights", weights_file)
    assert r.exit_code == 1
    assert files_in(out) == ["frame_0001.flo"]
    assert "out of memory" in r.stderr and "2 of 3 pairs failed" in r.stderr


def test_dir_says_which_pictures_it_left_out(invoke, tmp_path, weights_file):
    """A phone's folder: JPEGs and one HEIC (which OpenCV does not read). The HEIC is left out, so frames 1 and 3
    make a pair: the run says so (a warning naming it), rather than pairing them behind the user's back."""
    frames = tmp_path / "frames"
    make_frames(frames, 3, names=["IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"])
    (frames / "IMG_0002.jpg").rename(frames / "IMG_0002.HEIC")
    r = invoke("dir", frames, "-o", tmp_path / "out", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    warnings = [ln for ln in r.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1 and "IMG_0002.HEIC" in warnings[0] and "skip a frame" in warnings[0]
    assert files_in(tmp_path / "out") == ["IMG_0001.flo"]
    only_heic = tmp_path / "heic"
    only_heic.mkdir()
    for name in ("a.heic", "b.heic"):
        (only_heic / name).write_bytes(b"\x00\x00\x00\x18ftypheic")
    r = invoke("dir", only_heic, "-o", tmp_path / "out2", "--weights", weights_file)
    assert r.exit_code == 2
    assert "2 in a format not read, e.g. a.heic" in one_error_line(r)
