"""Tests of flowcli.metrics on tiny arrays with values worked out by hand."""
from __future__ import annotations

import math

import numpy as np
import pytest

from flowcli.metrics import (
    MetricAccumulator,
    accuracy,
    aee,
    epe,
    fl_all,
    image_stats,
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
