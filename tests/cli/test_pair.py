"""flowcli pair: outputs by extension, pictures, summary/JSON, and the error cases."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flowcli.io import read_flow, read_image, write_image
from tests.support import H, W, files_in, one_error_line


@pytest.mark.parametrize("ext", [".flo", ".png", ".npy"])
def test_pair_writes_flow_by_extension(invoke, pair_files, weights_file, tmp_path, ext):
    out = tmp_path / f"out{ext}"
    r = invoke("pair", *pair_files, "-o", out, "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    flow, valid = read_flow(out)
    assert flow.shape == (H, W, 2) and np.isfinite(flow).all()
    assert r.stdout == ""  # results go to files; the summary to stderr
    assert "px" in r.stderr and str(out) in r.stderr


def test_pair_pictures(invoke, pair_files, weights_file, tmp_path):
    names = {"viz": "v.png", "warp": "w.png", "panel": "p.png", "occlusion": "o.png"}
    args = [a for k, v in names.items() for a in (f"--{k}", tmp_path / v)]
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo", *args, "--max-flow", "5", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    assert read_image(tmp_path / "v.png").shape == (H, W, 3)
    assert read_image(tmp_path / "w.png").shape == (H, W, 3)
    assert read_image(tmp_path / "p.png").shape == (H, 4 * W, 3)
    occ = read_image(tmp_path / "o.png")
    assert occ.shape == (H, W, 3) and set(np.unique(occ)) <= {0, 255}
    assert "occluded" in r.stderr


def test_pair_json(invoke, pair_files, weights_file, tmp_path):
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo", "--json", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["width"], data["height"]) == (W, H)
    assert data["max_px"] >= data["mean_px"] >= 0
    assert data["outputs"]["flow"] == str(tmp_path / "f.flo")


def test_pair_uses_bundled_weights_by_default(invoke, pair_files, bundled, tmp_path):
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo")
    assert r.exit_code == 0, r.stderr
    assert read_flow(tmp_path / "f.flo")[0].shape == (H, W, 2)


def test_pair_without_bundled_weights(invoke, pair_files, no_bundled, tmp_path):
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo")
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "no bundled weights" in line and "--weights" in line
    assert not (tmp_path / "f.flo").exists()


def test_missing_file(invoke, pair_files, weights_file, tmp_path):
    r = invoke("pair", pair_files[0], tmp_path / "nope.png", "-o", tmp_path / "f.flo", "--weights", weights_file)
    assert r.exit_code == 2
    assert "nope.png" in one_error_line(r)
    assert not (tmp_path / "f.flo").exists()


def test_size_mismatch(invoke, pair_files, weights_file, tmp_path):
    other = tmp_path / "big.png"
    write_image(other, np.zeros((H + 32, W, 3), np.uint8))
    r = invoke("pair", pair_files[0], other, "-o", tmp_path / "f.flo", "--weights", weights_file)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "big.png" in line and f"{W}x{H + 32}" in line
    assert not (tmp_path / "f.flo").exists()


def test_too_small_images_are_named(invoke, weights_file, tmp_path):
    tiny = [tmp_path / "t1.png", tmp_path / "t2.png"]
    for t in tiny:
        write_image(t, np.zeros((8, 40, 3), np.uint8))
    r = invoke("pair", *tiny, "-o", tmp_path / "f.flo", "--weights", weights_file)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert "t1.png" in line and "40x8" in line and "32x32" in line
    assert not (tmp_path / "f.flo").exists()


def test_unreadable_image(invoke, pair_files, weights_file, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    r = invoke("pair", pair_files[0], bad, "-o", tmp_path / "f.flo", "--viz", tmp_path / "v.png",
               "--weights", weights_file)
    assert r.exit_code == 1
    assert "bad.png" in one_error_line(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "pair"]


@pytest.mark.parametrize("opt,name", [("-o", "out.txt"), ("--viz", "v.flo"), ("--panel", "p")])
def test_unknown_extension(invoke, pair_files, weights_file, tmp_path, opt, name):
    r = invoke("pair", *pair_files, opt, tmp_path / name, "--weights", weights_file)
    assert r.exit_code == 2
    assert name in one_error_line(r)
    assert not (tmp_path / name).exists()


def test_unwritable_output_folder(invoke, pair_files, weights_file, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, so nothing can be created under it")
    r = invoke("pair", *pair_files, "-o", tmp_path / "ok.flo", "--viz", blocker / "sub" / "v.png",
               "--weights", weights_file)
    assert r.exit_code == 1
    assert "sub" in one_error_line(r)
    # nothing written, not even the flow whose folder was fine
    assert files_in(tmp_path) == ["file", "pair/frame_0001.png", "pair/frame_0002.png"]
