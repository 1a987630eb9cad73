"""Warping, error maps and the preview panel."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.io import read_flow, read_image, write_image
from flowcli.viz import epe_map, error_to_color, make_panel, photometric_error, warp_image
from tests.support import textured_image


def shifted_pair(h=40, w=50, dx=3, dy=-2, seed=0):
    """image1 and image2 with image2[y + dy, x + dx] = image1[y, x] (content moves by (dx, dy))."""
    big = textured_image(h + 20, w + 20, seed=seed)
    img1 = big[10:10 + h, 10:10 + w]
    img2 = big[10 - dy:10 - dy + h, 10 - dx:10 - dx + w]
    return np.ascontiguousarray(img1), np.ascontiguousarray(img2)


@pytest.mark.parametrize("dx,dy", [(3, -2), (-4, 5), (0, 0)])
def test_integer_shift_reproduces_image(dx, dy):
    img1, img2 = shifted_pair(dx=dx, dy=dy)
    h, w = img1.shape[:2]
    flow = np.zeros((h, w, 2), np.float32)
    flow[..., 0], flow[..., 1] = dx, dy
    warped, inside = warp_image(img2, flow)
    assert warped.dtype == np.uint8 and warped.shape == img1.shape
    # Inside exactly where 0 <= x + dx <= w - 1 and 0 <= y + dy <= h - 1.
    ys, xs = np.mgrid[0:h, 0:w]
    expected_inside = (xs + dx >= 0) & (xs + dx <= w - 1) & (ys + dy >= 0) & (ys + dy <= h - 1)
    np.testing.assert_array_equal(inside, expected_inside)
    np.testing.assert_array_equal(warped[inside], img1[inside])
    assert (warped[~inside] == 0).all()
    err = photometric_error(img1, warped, inside)
    assert np.nanmax(err) == 0
    assert np.isnan(err[~inside]).all()


def test_subpixel_is_bilinear_and_dtypes_kept():
    img = np.arange(20, dtype=np.float32).reshape(4, 5)
    flow = np.zeros((4, 5, 2), np.float32)
    flow[..., 0] = 0.5
    flow[..., 1] = 0.25
    warped, inside = warp_image(img, flow)
    assert warped.shape == (4, 5) and warped.dtype == np.float32
    # Bilinear: img is linear (x + 5y), so sampling at (x + .5, y + .25) gives x + .5 + 5(y + .25).
    ys, xs = np.mgrid[0:4, 0:5]
    np.testing.assert_allclose(warped[inside], (xs + 0.5 + 5 * (ys + 0.25))[inside], atol=0.05)
    assert not inside[:, -1].any() and not inside[-1, :].any()
    img16 = (np.arange(6 * 7 * 5) * 100).astype(np.uint16).reshape(6, 7, 5)  # 5 channels: > remap's 4
    w16, _ = warp_image(img16, np.zeros((6, 7, 2)))
    assert w16.dtype == np.uint16
    np.testing.assert_array_equal(w16, img16)


def test_nan_flow_is_outside():
    img1, img2 = shifted_pair()
    flow = np.zeros(img1.shape[:2] + (2,), np.float32)
    flow[5, 6] = np.nan
    warped, inside = warp_image(img2, flow)
    assert not inside[5, 6] and inside.sum() == inside.size - 1
    assert (warped[5, 6] == 0).all()


def test_warp_bad_arguments():
    with pytest.raises(ValueError, match="flow"):
        warp_image(np.zeros((4, 5, 3), np.uint8), np.zeros((5, 4, 2)))
    with pytest.raises(ValueError, match="dtype"):
        warp_image(np.zeros((4, 5), bool), np.zeros((4, 5, 2)))


def test_photometric_error_units():
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 0] = (30, 0, 0)
    err = photometric_error(a, b)
    assert err.dtype == np.float32
    assert err[0, 0] == pytest.approx(10.0) and err[1, 1] == 0
    with pytest.raises(ValueError, match="same shape"):
        photometric_error(a, b[:1])


def test_epe_map():
    gt = np.zeros((2, 3, 2), np.float32)
    flow = gt.copy()
    flow[0, 0] = (3, 4)
    valid = np.ones((2, 3), bool)
    valid[1, 1] = False
    e = epe_map(flow, gt, valid)
    assert e.dtype == np.float32 and e.shape == (2, 3)
    assert e[0, 0] == pytest.approx(5.0) and e[0, 1] == 0
    assert np.isnan(e[1, 1])


def test_error_to_color():
    err = np.array([[0.0, 1.0, 2.0, np.nan]], np.float32)
    rgb = error_to_color(err)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 3]) == (0, 0, 0)
    assert rgb[0, :3].max(axis=1).min() > 0  # finite errors are never black
    assert len({tuple(c) for c in rgb[0, :3]}) == 3
    # A fixed max_err saturates: 2.0 and 5.0 look the same when max_err=2.
    sat = error_to_color(np.array([[2.0, 5.0]]), max_err=2.0)
    assert tuple(sat[0, 0]) == tuple(sat[0, 1])


def test_panel(tmp_path):
    img1, img2 = shifted_pair(h=20, w=30)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3, -2
    warped, inside = warp_image(img2, flow)
    err = photometric_error(img1, warped, inside)
    panel = make_panel(img1, flow, warped, err)
    assert panel.shape == (20, 4 * 30, 3) and panel.dtype == np.uint8
    np.testing.assert_array_equal(panel[:, :30], img1)
    np.testing.assert_array_equal(panel[:, 60:90], warped)
    write_image(tmp_path / "panel.png", panel)
    np.testing.assert_array_equal(read_image(tmp_path / "panel.png"), panel)
    with pytest.raises(ValueError):
        make_panel(img1, flow, warped[:10], err)


# --------------------------------------------------------------------------- real ground truth

WARP_PAIRS = [
    "sintel_clean_alley_1_0001",
    "chairs_flownet2_0000000",
    "chairs_flownet2_0000001",
    "chairs_flownet2_0000002",
    "middlebury_RubberWhale",
]


def image(folder, stem):
    (path,) = [p for p in folder.iterdir() if p.stem == stem]
    return read_image(path)


@pytest.mark.parametrize("name", WARP_PAIRS)
def test_gt_warp_lowers_photometric_error(real_dir, name):
    folder = real_dir / name
    flow, valid = read_flow(folder / "gt.flo")
    img1, img2 = image(folder, "img1"), image(folder, "img2")
    warped, inside = warp_image(img2, flow)
    mask = inside & valid
    assert mask.mean() > 0.5
    warped_err = np.nanmean(photometric_error(img1, warped, mask))
    plain_err = np.nanmean(photometric_error(img1, img2, mask))
    assert warped_err < 0.7 * plain_err, (warped_err, plain_err)
