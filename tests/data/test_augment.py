"""Tests of the training augmentation: exact flow transformation, masks, plain crops, photometrics."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from flowcli.data.augment import augment_pair, photometric, sample_transforms, warp_pair
from flowcli.data.synthetic import SyntheticFlow
from tests.support import photometric_errors, textured_image


@pytest.fixture(scope="module")
def samples():
    ds = SyntheticFlow((192, 256), seed=5)
    return [ds[i] for i in range(3)]


def _translation(tx: float, ty: float, zoom: float = 1.0) -> np.ndarray:
    return np.array([[1.0 / zoom, 0, tx], [0, 1.0 / zoom, ty], [0, 0, 1]])


def test_geometric_augmentation_keeps_gt_exact(samples):
    for i, s in enumerate(samples):
        for seed in range(2):
            out = augment_pair(s, np.random.default_rng([i, seed]), crop=(160, 224), photometric_aug=False)
            assert out["img1"].shape == (160, 224, 3) and out["img1"].dtype == np.uint8
            assert out["flow"].shape == (160, 224, 2) and out["flow"].dtype == np.float32
            assert out["valid"].mean() > 0.9  # the footprint of crop 1 stays inside the source
            err, raw = photometric_errors(out)
            assert err < 3.5, (i, seed, err)
            assert raw > 3 * err, (i, seed, err, raw)


def test_flow_transform_formula_translation_and_zoom():
    h, w = 40, 50
    flow = np.random.default_rng(0).normal(0, 3, (h, w, 2)).astype(np.float32)
    img = textured_image(h, w, 1)
    s = {"img1": img, "img2": img, "flow": flow, "valid": np.ones((h, w), bool), "occ": None,
         "name": "x", "sequence": ""}
    # Image 2 cropped 3 px further right and 2 px lower: every vector loses (3, 2).
    out = warp_pair(s, _translation(5, 4), _translation(8, 6), (20, 30))
    np.testing.assert_allclose(out["flow"], flow[4:24, 5:35] - np.float32([3, 2]), atol=1e-4)
    # Both images magnified 2x about the origin: vectors double, sampled at x / 2.
    out = warp_pair(s, _translation(0, 0, 2.0), _translation(0, 0, 2.0), (20, 30))
    np.testing.assert_allclose(out["flow"][::2, ::2], 2 * flow[:10, :15], atol=1e-4)
    # A 90-degree rotation of both images rotates the vectors the same way.
    rot = np.array([[0.0, -1, 39], [1, 0, 0], [0, 0, 1]])  # crop (x, y) -> source (39 - y, x)
    out = warp_pair(s, rot, rot, (30, 40))
    ys, xs = np.mgrid[0:30, 0:40]
    src = flow[xs, 39 - ys]  # crop pixel (x, y) shows source row x, column 39 - y
    np.testing.assert_allclose(out["flow"][..., 0], src[..., 1], atol=1e-4)
    np.testing.assert_allclose(out["flow"][..., 1], -src[..., 0], atol=1e-4)
    np.testing.assert_array_equal(out["img1"], img[xs, 39 - ys])


def test_valid_masks_follow_the_transform():
    h, w = 60, 80
    flow = np.zeros((h, w, 2), np.float32)
    valid = np.ones((h, w), bool)
    valid[20:40, 30:50] = False  # an invalid block
    occ = np.zeros((h, w), bool)
    occ[5:10, 5:10] = True
    img = textured_image(h, w, 2)
    s = {"img1": img, "img2": img, "flow": flow, "valid": valid, "occ": occ, "name": "x", "sequence": ""}
    # Zoom out by 2 about the source centre: the crop sees the whole source and a border outside it.
    a = np.array([[2.0, 0, -40], [0, 2.0, -30], [0, 0, 1]])
    out = warp_pair(s, a, a, (60, 80))
    ys, xs = np.mgrid[0:60, 0:80]
    sx, sy = 2 * xs - 40, 2 * ys - 30
    outside = (sx < 0) | (sx > w - 1) | (sy < 0) | (sy > h - 1)
    in_block = (sx >= 30) & (sx <= 49) & (sy >= 20) & (sy <= 39)
    np.testing.assert_array_equal(out["valid"], ~outside & ~in_block)
    assert (out["flow"][~out["valid"]] == 0).all()
    in_occ = (sx >= 5) & (sx <= 9) & (sy >= 5) & (sy <= 9)
    assert out["occ"][in_occ].all()
    assert not out["occ"][~in_occ & ~outside].any()


def test_sparse_valid_is_not_blended_with_holes():
    h, w = 50, 60
    g = np.random.default_rng(3)
    valid = g.random((h, w)) < 0.3  # KITTI-like sparse ground truth
    flow = np.where(valid[..., None], g.normal(0, 5, (h, w, 2)), 0).astype(np.float32)
    img = textured_image(h, w, 3)
    s = {"img1": img, "img2": img, "flow": flow, "valid": valid, "occ": None, "name": "x", "sequence": ""}
    a = _translation(3.5, 2.25)  # half-pixel: every output samples 2 or 4 source pixels
    out = warp_pair(s, a, a, (40, 50))
    ys, xs = np.mgrid[0:40, 0:50]
    x0, y0 = xs + 3, ys + 2
    expected = valid[y0, x0] & valid[y0, x0 + 1] & valid[y0 + 1, x0] & valid[y0 + 1, x0 + 1]
    np.testing.assert_array_equal(out["valid"], expected)


def test_strength_zero_is_a_plain_crop(samples):
    s = samples[0]
    for seed in range(3):
        out = augment_pair(s, np.random.default_rng(seed), crop=(128, 160), strength=0.0)
        res = cv2.matchTemplate(s["img1"], out["img1"], cv2.TM_SQDIFF)
        y0, x0 = np.unravel_index(np.argmin(res), res.shape)
        sl = (slice(y0, y0 + 128), slice(x0, x0 + 160))
        for key in ("img1", "img2", "flow", "valid"):
            np.testing.assert_array_equal(out[key], s[key][sl])
        assert out["name"] == s["name"] and out["sequence"] == s["sequence"]
        # occ: the crop's own, plus points that now move out of the crop.
        assert (out["occ"] >= s["occ"][sl]).all()


def test_geometric_off_photometric_on_changes_only_colours(samples):
    s = samples[1]
    out = augment_pair(s, np.random.default_rng(1), crop=(128, 160), geometric=False)
    res = cv2.matchTemplate(s["flow"][..., 0].copy(), out["flow"][..., 0].copy(), cv2.TM_SQDIFF)
    y0, x0 = np.unravel_index(np.argmin(res), res.shape)
    np.testing.assert_array_equal(out["flow"], s["flow"][y0:y0 + 128, x0:x0 + 160])
    assert out["img1"].dtype == np.uint8
    diff = np.abs(out["img1"].astype(int) - s["img1"][y0:y0 + 128, x0:x0 + 160]).mean()
    assert diff > 0.5


def test_photometric_is_mostly_shared_between_frames():
    img = textured_image(64, 64, 4)
    rng = np.random.default_rng(0)
    rel, total = [], []
    for _ in range(10):
        a, b = photometric(img, img, rng, 1.0)
        assert a.dtype == np.uint8 and a.shape == img.shape
        rel.append(np.abs(a.astype(float) - b).mean())
        total.append(np.abs(a.astype(float) - img).mean())
    # Each frame changes a lot on average, the two frames much less relative to each other
    # (their difference is dominated by the independent noise).
    assert np.mean(total) > 8
    assert np.mean(rel) < np.mean(total)
    same = photometric(img, img, rng, 0.0)
    assert same[0] is img and same[1] is img


def test_sample_transforms_keep_crop_inside_source():
    rng = np.random.default_rng(9)
    for _ in range(50):
        a1, a2 = sample_transforms(rng, (384, 512), (320, 448), 1.0)
        corners = np.array([[0, 0, 1], [447, 0, 1], [0, 319, 1], [447, 319, 1]], float) @ a1.T
        assert corners[:, 0].min() >= -1e-6 and corners[:, 0].max() <= 511 + 1e-6
        assert corners[:, 1].min() >= -1e-6 and corners[:, 1].max() <= 383 + 1e-6
        rel = np.linalg.inv(a1) @ a2
        assert np.abs(rel[:2, 2]).max() < 100  # image 2's transform stays close to image 1's
    # A source smaller than the crop is magnified to fit.
    a1, _ = sample_transforms(rng, (100, 120), (320, 448), 1.0)
    corners = np.array([[0, 0, 1], [447, 319, 1]], float) @ a1.T
    assert corners.min() >= -1e-6 and corners[:, 0].max() <= 119 + 1e-6


def test_negative_strength_refused(samples):
    with pytest.raises(ValueError, match="strength"):
        augment_pair(samples[0], np.random.default_rng(0), crop=(64, 64), strength=-1)
