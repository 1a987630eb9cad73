"""Tests of flowcli.metrics on tiny arrays with values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from flowcli.metrics import (
    BOUNDARY_BINS,
    BOUNDARY_STEP,
    MetricAccumulator,
    accuracy,
    aee,
    aee_by_boundary,
    boundary_bin_labels,
    boundary_distance,
    epe,
    fl_all,
    image_stats,
    motion_boundaries,
    outliers,
)


def _f(vectors):
    """A 1xN flow field from a list of (u, v)."""
    return np.array([vectors], np.float32)


# Image A: errors 5 (3-4-5 triangle), 0 and 1 against a zero ground truth.
A_FLOW = _f([(3, 4), (0, 0), (0, 1)])
A_GT = _f([(0, 0), (0, 0), (0, 0)])
# Image B: errors 1 and 0; the first pixel is occluded.
B_FLOW = _f([(1, 0), (0, 0)])
B_GT = _f([(0, 0), (0, 0)])
B_OCC = np.array([[True, False]])


def test_epe_by_hand():
    np.testing.assert_allclose(epe(A_FLOW, A_GT), [[5.0, 0.0, 1.0]])
    assert epe(A_FLOW, A_GT).dtype == np.float32


def test_aee_accuracy_fl_by_hand():
    assert aee(A_FLOW, A_GT) == pytest.approx(2.0)
    assert accuracy(A_FLOW, A_GT, None, 1) == pytest.approx(1 / 3)  # only the exact pixel
    assert accuracy(A_FLOW, A_GT, None, 3) == pytest.approx(2 / 3)  # 0 and 1 < 3
    assert accuracy(A_FLOW, A_GT, None, 5) == pytest.approx(2 / 3)  # 5 is not < 5
    assert fl_all(A_FLOW, A_GT, None) == pytest.approx(1 / 3)  # the 5-px error, |gt| = 0


def test_valid_mask_is_respected():
    valid = np.array([[False, True, True]])
    assert aee(A_FLOW, A_GT, valid) == pytest.approx(0.5)
    assert fl_all(A_FLOW, A_GT, valid) == 0.0
    assert accuracy(A_FLOW, A_GT, valid, 1) == pytest.approx(0.5)
    assert math.isnan(aee(A_FLOW, A_GT, np.zeros((1, 3), bool)))


def test_fl_outlier_needs_both_absolute_and_relative_error():
    gt = _f([(100, 0), (100, 0), (10, 0), (0, 0)])
    flow = _f([(104, 0), (106, 0), (14, 0), (2, 0)])
    # 4 px > 3 but < 5 % of 100; 6 px > 5; 4 px > 0.5; 2 px < 3.
    np.testing.assert_array_equal(outliers(flow, gt), [[False, True, True, False]])
    assert fl_all(flow, gt) == pytest.approx(0.5)


def test_gt_as_prediction_is_perfect():
    g = np.random.default_rng(0).normal(0, 10, (6, 7, 2)).astype(np.float32)
    assert aee(g, g) == 0.0
    assert fl_all(g, g, np.ones((6, 7), bool)) == 0.0
    assert accuracy(g, g, None, 1) == 1.0
    for kind in ("sintel", "kitti"):
        acc = MetricAccumulator(kind)
        acc.add(g, g, occ=np.eye(6, 7, dtype=bool), sequence="s")
        acc.add(g[:3], g[:3])
        s = acc.summary()
        assert s["aee"] == 0.0 and s["fl_all"] == 0.0 and s["acc1"] == 1.0
        assert s["aee_noc"] == 0.0 and s["aee_occ"] == 0.0 and s["fl_noc"] == 0.0


def test_sintel_is_pixel_weighted_kitti_is_per_image():
    sintel, kitti = MetricAccumulator("sintel"), MetricAccumulator("kitti")
    for acc in (sintel, kitti):
        first = acc.add(A_FLOW, A_GT, name="a", sequence="s1")
        acc.add(B_FLOW, B_GT, occ=B_OCC, name="b", sequence="s2")
        assert first["aee"] == pytest.approx(2.0) and first["aee_noc"] is None
    s = sintel.summary()
    # Errors 5, 0, 1, 1, 0 over 5 pixels.
    assert s["aee"] == pytest.approx(7 / 5)
    assert s["images"] == 2 and s["pixels"] == 5 and s["kind"] == "sintel"
    assert s["fl_all"] == pytest.approx(1 / 5)
    assert s["acc1"] == pytest.approx(2 / 5) and s["acc3"] == pytest.approx(4 / 5)
    # Only image B has a mask: its non-occluded pixel is exact, its occluded one is 1 px off.
    assert s["aee_noc"] == pytest.approx(0.0) and s["aee_occ"] == pytest.approx(1.0)
    k = kitti.summary()
    assert k["aee"] == pytest.approx((2.0 + 0.5) / 2)  # mean of per-image means
    assert k["fl_all"] == pytest.approx(1 / 5)  # pooled over pixels
    assert k["aee_noc"] == pytest.approx(0.0) and k["aee_occ"] == pytest.approx(1.0)


def test_noc_occ_aggregation_rules_differ():
    # Two images with masks: C has 1 non-occluded pixel with error 2; D has 3 with errors 0.
    c_flow, c_gt, c_occ = _f([(2, 0), (0, 0)]), _f([(0, 0), (0, 0)]), np.array([[False, True]])
    d_flow, d_gt, d_occ = _f([(0, 0)] * 3), _f([(0, 0)] * 3), np.zeros((1, 3), bool)
    sintel, kitti = MetricAccumulator("sintel"), MetricAccumulator("kitti")
    for acc in (sintel, kitti):
        acc.add(c_flow, c_gt, occ=c_occ)
        acc.add(d_flow, d_gt, occ=d_occ)
    assert sintel.summary()["aee_noc"] == pytest.approx(2 / 4)
    assert kitti.summary()["aee_noc"] == pytest.approx((2.0 + 0.0) / 2)
    assert sintel.summary()["aee_occ"] == pytest.approx(0.0)  # only C has an occluded pixel
    assert kitti.summary()["aee_occ"] == pytest.approx(0.0)


def test_per_sequence_and_per_image():
    acc = MetricAccumulator("sintel")
    acc.add(A_FLOW, A_GT, name="a", sequence="s1")
    acc.add(B_FLOW, B_GT, occ=B_OCC, name="b", sequence="s2")
    acc.add(A_GT, A_GT, name="c", sequence="s1")
    seq = acc.per_sequence()
    assert list(seq) == ["s1", "s2"]
    assert seq["s1"]["aee"] == pytest.approx(6 / 6) and seq["s1"]["images"] == 2
    assert seq["s2"]["aee"] == pytest.approx(1 / 2)
    assert seq["s1"]["aee_noc"] is None
    per = acc.per_image()
    assert [p["name"] for p in per] == ["a", "b", "c"]
    assert per[1]["aee_occ"] == pytest.approx(1.0) and per[1]["pixels"] == 2
    assert len(acc) == 3


def test_add_stats_matches_add():
    a, b = MetricAccumulator("kitti"), MetricAccumulator("kitti")
    a.add(A_FLOW, A_GT, name="x")
    b.add_stats(image_stats(A_FLOW, A_GT, name="x"))
    assert a.summary() == b.summary()


def test_empty_and_invalid_inputs():
    assert MetricAccumulator("kitti").summary()["aee"] is None
    with pytest.raises(ValueError, match="unknown kind"):
        MetricAccumulator("nope")
    with pytest.raises(ValueError, match="HxWx2"):
        aee(np.zeros((2, 2, 2)), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="mask"):
        aee(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)), np.ones((3, 3), bool))


# ---- AEE by distance to the nearest motion boundary
# A 160x200 static background with a 20x20 square (rows 70-89, columns 90-109) moving by (20, 0).
SQ_H, SQ_W, SQ_TOP, SQ_LEFT, SQ_SIZE = 160, 200, 70, 90, 20


def _square_gt() -> np.ndarray:
    gt = np.zeros((SQ_H, SQ_W, 2), np.float32)
    gt[SQ_TOP:SQ_TOP + SQ_SIZE, SQ_LEFT:SQ_LEFT + SQ_SIZE, 0] = 20.0
    return gt


def _brute_boundaries(gt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Pixel by pixel: a valid pixel with a valid 4-neighbour whose flow differs by more than 1 px."""
    h, w = valid.shape
    out = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w and valid[y, x] and valid[yy, xx]:
                    out[y, x] |= float(np.linalg.norm(gt[y, x] - gt[yy, xx])) > 1.0
    return out


def _brute_distance(mask: np.ndarray) -> np.ndarray:
    """Chessboard distance of every pixel to the nearest True pixel of ``mask``, by trying them all."""
    ys, xs = np.nonzero(mask)
    gy, gx = np.mgrid[:mask.shape[0], :mask.shape[1]]
    d = np.maximum(np.abs(gy[..., None] - ys), np.abs(gx[..., None] - xs))
    return d.min(axis=-1)


def test_boundary_constants_and_labels():
    assert BOUNDARY_STEP == 1.0 and BOUNDARY_BINS == (0, 10, 60, math.inf)
    assert boundary_bin_labels() == ["0-10", "10-60", "60+"]


def test_square_boundaries_sit_along_its_edge():
    gt = _square_gt()
    b = motion_boundaries(gt, np.ones((SQ_H, SQ_W), bool))
    np.testing.assert_array_equal(b, _brute_boundaries(gt, np.ones((SQ_H, SQ_W), bool)))
    t, lf, e = SQ_TOP, SQ_LEFT, SQ_SIZE
    inside = np.zeros((SQ_H, SQ_W), bool)
    inside[t:t + e, lf:lf + e] = True
    ring = inside.copy()
    ring[t + 1:t + e - 1, lf + 1:lf + e - 1] = False  # the square's own outermost pixels
    # ... and the background pixels that touch them side by side (the outer ring's corners touch only diagonally)
    outer = np.zeros_like(inside)
    outer[t - 1, lf:lf + e] = outer[t + e, lf:lf + e] = True
    outer[t:t + e, lf - 1] = outer[t:t + e, lf + e] = True
    np.testing.assert_array_equal(b, ring | outer)
    assert b.sum() == 4 * (e - 1) + 4 * e


def test_distance_is_chessboard_to_the_edge():
    b = motion_boundaries(_square_gt())
    d = boundary_distance(b, 60)
    brute = _brute_distance(b)
    np.testing.assert_array_equal(d, np.where(brute <= 60, brute, np.inf))
    above = SQ_TOP - 1  # the row of boundary pixels above the square
    for k in (0, 1, 5, 9, 10, 30, 59, 60):
        assert d[above - k, SQ_LEFT + 10] == k
    assert d[SQ_TOP + 10, SQ_LEFT - 1 - 35] == 35  # to the left
    assert d[0, 0] == math.inf  # 89 px from the square, beyond the limit
    assert boundary_distance(np.zeros((5, 6), bool), 60).tolist() == np.full((5, 6), np.inf).tolist()


def test_aee_by_boundary_on_the_square():
    gt = _square_gt()
    valid = np.ones((SQ_H, SQ_W), bool)
    brute = _brute_distance(_brute_boundaries(gt, valid))
    flow = gt.copy()
    flow[..., 1] += (brute < 10).astype(np.float32)  # error 1.0 within 10 px of the edge, 0 elsewhere
    bands = aee_by_boundary(flow, gt)
    assert list(bands) == ["0-10", "10-60", "60+"]
    assert bands["0-10"]["aee"] == pytest.approx(1.0)
    assert bands["10-60"]["aee"] == 0.0 and bands["60+"]["aee"] == 0.0
    counts = [int(np.count_nonzero(brute < 10)), int(np.count_nonzero((brute >= 10) & (brute < 60))),
              int(np.count_nonzero(brute >= 60))]
    assert [b["pixels"] for b in bands.values()] == counts and min(counts) > 0
    assert sum(b["share"] for b in bands.values()) == pytest.approx(1.0)
    assert bands["60+"]["share"] == pytest.approx(counts[2] / (SQ_H * SQ_W))
    assert image_stats(flow, gt).as_dict()["by_boundary"] == bands


def test_boundary_ignores_invalid_pixels():
    # Left two columns still, right two moving by 5 px: a boundary between columns 1 and 2 ...
    gt = np.zeros((3, 4, 2), np.float32)
    gt[:, 2:, 0] = 5.0
    assert motion_boundaries(gt).tolist() == [[False, True, True, False]] * 3
    # ... but not when column 1 is invalid: its jump to column 2 is not a boundary, and it is not counted.
    valid = np.ones((3, 4), bool)
    valid[:, 1] = False
    assert not motion_boundaries(gt, valid).any()
    flow = gt.copy()
    flow[:, 1] = 100.0  # a huge error on the invalid pixels only
    bands = aee_by_boundary(flow, gt, valid)
    assert [b["pixels"] for b in bands.values()] == [0, 0, 9]
    assert bands["60+"]["aee"] == 0.0 and bands["0-10"]["aee"] is None


def test_smooth_field_has_no_boundary():
    gy, gx = np.mgrid[:30, :40].astype(np.float32)
    smooth = np.stack([0.5 * gx, 0.5 * gy], axis=-1)  # 0.5 px more per pixel in x and in y
    assert not motion_boundaries(smooth).any()
    step = np.stack([gx, np.zeros_like(gx)], axis=-1)  # exactly 1 px per pixel: not more than 1 px
    assert not motion_boundaries(step).any()
    bands = aee_by_boundary(smooth + 1.0, smooth)
    assert bands["60+"]["pixels"] == 30 * 40 and bands["60+"]["share"] == 1.0
    assert bands["60+"]["aee"] == pytest.approx(math.sqrt(2), rel=1e-6)


def test_by_boundary_pools_pixels_across_images():
    sq_gt = _square_gt()
    sq_flow = sq_gt + np.float32(2.0) * (boundary_distance(motion_boundaries(sq_gt)) < 10)[..., None]
    gy, gx = np.mgrid[:30, :40].astype(np.float32)
    smooth = np.stack([0.5 * gx, 0.5 * gy], axis=-1)
    one, two = aee_by_boundary(sq_flow, sq_gt), aee_by_boundary(smooth + 3.0, smooth)
    for kind in ("sintel", "kitti"):  # pooled over pixels whatever the AEE's rule
        acc = MetricAccumulator(kind)
        acc.add(sq_flow, sq_gt, sequence="a")
        acc.add(smooth + 3.0, smooth, sequence="b")
        pooled = acc.summary()["by_boundary"]
        for label in boundary_bin_labels():
            n = one[label]["pixels"] + two[label]["pixels"]
            assert pooled[label]["pixels"] == n
            sums = sum(b[label]["pixels"] * (b[label]["aee"] or 0.0) for b in (one, two))
            assert pooled[label]["aee"] == pytest.approx(sums / n)
            assert pooled[label]["share"] == pytest.approx(n / (SQ_H * SQ_W + 30 * 40))
        assert pooled["0-10"]["aee"] == pytest.approx(2 * math.sqrt(2))
        # the smooth image's 1200 pixels (error 3 * sqrt 2) join the square's far pixels (error 0) in "60+"
        far = one["60+"]["pixels"]
        assert pooled["60+"]["aee"] == pytest.approx(1200 * 3 * math.sqrt(2) / (far + 1200))
        assert acc.per_sequence()["b"]["by_boundary"] == two
