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


def test_pair_pictures(invoke, tmp_path):
    """Each picture is what its name says, of the flow written, with trained weights on a texture moving 4 px right:
    the colors of that flow at --max-flow, frame 2 warped back onto frame 1 (so it matches frame 1), the four tiles of
    the panel (below their titles), and the occlusion mask: the 4 columns at the right edge, which leave the view."""
    from flowcli.api import Estimator
    from flowcli.viz import flow_to_color, occlusion_mask, photometric_error, warp_image
    from flowcli.viz.panels import error_to_color
    from tests.support import textured_image

    texture = textured_image(H, W + 4, seed=3)
    img1, img2 = np.ascontiguousarray(texture[:, 4:]), np.ascontiguousarray(texture[:, :-4])
    write_image(tmp_path / "a.png", img1)
    write_image(tmp_path / "b.png", img2)
    names = {"viz": "v.png", "warp": "w.png", "panel": "p.png", "occlusion": "o.png"}
    args = [a for k, v in names.items() for a in (f"--{k}", tmp_path / v)]
    r = invoke("pair", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "f.flo", *args, "--max-flow", "5",
               "--recipe", "plain", "--device", "cpu", "--json")
    if r.exit_code == 1 and "no bundled weights" in r.stderr:
        pytest.skip("no bundled weights in this checkout")
    assert r.exit_code == 0, r.stderr
    flow, _ = read_flow(tmp_path / "f.flo")
    inner = (slice(8, -8), slice(8, -8))
    assert abs(float(flow[inner][..., 0].mean()) - 4) < 0.5
    colors = flow_to_color(flow, max_flow=5)
    warped = warp_image(img2, flow)[0]
    np.testing.assert_array_equal(read_image(tmp_path / "v.png"), colors)
    np.testing.assert_array_equal(read_image(tmp_path / "w.png"), warped)
    error = photometric_error(img1, read_image(tmp_path / "w.png"))
    assert error[inner].mean() < 0.25 * photometric_error(img1, img2)[inner].mean()  # warped back onto frame 1
    panel = read_image(tmp_path / "p.png")
    assert panel.shape == (H, 4 * W, 3)
    below = slice(H // 2, H)  # the tiles' titles sit in their top-left corners
    tiles = [img1, colors, warped, error_to_color(photometric_error(img1, warped))]
    for k, tile in enumerate(tiles):
        np.testing.assert_array_equal(panel[below, k * W:(k + 1) * W], tile[below], err_msg=f"panel tile {k}")
    occ = read_image(tmp_path / "o.png")
    assert occ.shape == (H, W, 3) and set(np.unique(occ)) <= {0, 255}
    occluded = occ[..., 0] > 0
    assert occluded[:, -4:].mean() > 0.9 and occluded[inner].mean() < 0.05
    backward = Estimator(device="cpu", recipe="plain").estimate(img2, img1)
    assert np.mean(occluded != occlusion_mask(flow, backward)) < 0.01  # batched and single runs differ in the last bits
    assert json.loads(r.stdout)["occluded_fraction"] == round(float(occluded.mean()), 4)


def test_pair_json(invoke, pair_files, weights_file, tmp_path):
    """The figures printed are those of the flow written."""
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo", "--json", "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    flow, _ = read_flow(tmp_path / "f.flo")
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    assert (data["width"], data["height"]) == (W, H)
    assert data["mean_px"] == pytest.approx(float(magnitude.mean()), abs=1e-4)
    assert data["max_px"] == pytest.approx(float(magnitude.max()), abs=1e-4)
    assert data["max_px"] > data["mean_px"] > 0
    assert data["outputs"] == {"flow": str(tmp_path / "f.flo")}
    assert data["image1"] == str(pair_files[0]) and data["image2"] == str(pair_files[1])


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
