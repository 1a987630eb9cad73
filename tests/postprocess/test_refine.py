"""Variational refinement on a synthetic affine motion whose true flow is exact."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from flowcli.postprocess import variational_refine


def _affine_pair(rng: np.random.Generator, h: int = 96, w: int = 128):
    """Frame 2 is frame 1 moved by an affine map A, so the true flow is A(x) - x exactly."""
    noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img1 = cv2.GaussianBlur(noise, (0, 0), 1.5)
    img1 = cv2.normalize(img1, None, 0, 255, cv2.NORM_MINMAX)  # blurring flattened the contrast
    angle, scale = np.deg2rad(2.0), 1.02
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    t = np.array([1.3, -0.7]) + np.array([w / 2, h / 2]) - a @ np.array([w / 2, h / 2])  # about the centre
    m = np.hstack([a, t[:, None]]).astype(np.float64)
    # warpAffine without WARP_INVERSE_MAP: img2(A x) = img1(x).
    img2 = cv2.warpAffine(img1, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    gt = np.stack([m[0, 0] * gx + m[0, 1] * gy + m[0, 2] - gx,
                   m[1, 0] * gx + m[1, 1] * gy + m[1, 2] - gy], axis=2).astype(np.float32)
    return img1, img2, gt


def _smooth_noise(rng, h, w, amplitude):
    coarse = rng.normal(0, 1, (4, 5, 2)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    return field * (amplitude / np.sqrt((field ** 2).sum(axis=2)).mean())


def _aee(flow, gt, border=10):
    d = (flow - gt)[border:-border, border:-border]
    return float(np.sqrt((d ** 2).sum(axis=2)).mean())


def test_refinement_reduces_error_of_perturbed_flow(rng):
    img1, img2, gt = _affine_pair(rng)
    start = gt + _smooth_noise(rng, *gt.shape[:2], amplitude=0.8)
    before = _aee(start, gt)
    assert 0.5 < before < 1.2
    out = variational_refine(img1, img2, start)
    assert out.shape == gt.shape and out.dtype == np.float32
    after = _aee(out, gt)
    assert after < 0.25 * before, (before, after)  # measured: 0.73 px -> 0.06 px
    # One octave only (full resolution) helps less: each linearisation reaches about a pixel.
    one = _aee(variational_refine(img1, img2, start, octaves=1), gt)
    assert after < one < 0.6 * before, (before, one, after)


def test_zero_flow_on_identical_images_stays_zero(rng):
    img1, _, _ = _affine_pair(rng)
    out = variational_refine(img1, img1.copy(), np.zeros(img1.shape[:2] + (2,), np.float32))
    assert np.abs(out).max() < 0.02


def test_input_not_modified(rng):
    img1, img2, gt = _affine_pair(rng, 48, 64)
    start = gt + 0.5
    keep, keep1, keep2 = start.copy(), img1.copy(), img2.copy()
    out = variational_refine(img1, img2, start, fixed_point_iterations=3)
    assert np.array_equal(start, keep) and np.array_equal(img1, keep1) and np.array_equal(img2, keep2)
    assert out is not start and not np.shares_memory(out, start)
    # float64 input and gray frames are accepted; the result is float32.
    g1, g2 = cv2.cvtColor(img1, cv2.COLOR_RGB2GRAY), cv2.cvtColor(img2, cv2.COLOR_RGB2GRAY)
    assert variational_refine(g1, g2, start.astype(np.float64), octaves=1).dtype == np.float32


def test_more_octaves_than_the_image_allows(rng):
    img1, img2, gt = _affine_pair(rng, 40, 48)
    out = variational_refine(img1, img2, gt, octaves=8, fixed_point_iterations=2)  # tiny levels skipped
    assert out.shape == gt.shape and np.isfinite(out).all()


def test_errors(rng):
    img1, img2, gt = _affine_pair(rng, 32, 40)
    with pytest.raises(ValueError, match=r"flow must be \(H, W, 2\), got \(32, 40, 3\)"):
        variational_refine(img1, img2, np.zeros((32, 40, 3), np.float32))
    with pytest.raises(ValueError, match=r"flow is \(32, 39\)"):
        variational_refine(img1, img2, np.zeros((32, 39, 2), np.float32))
    bad = gt.copy()
    bad[3, 4, 1] = np.nan
    bad[5, 6, 0] = np.inf
    with pytest.raises(ValueError, match="2 pixel"):
        variational_refine(img1, img2, bad)
    with pytest.raises(ValueError, match="same size"):
        variational_refine(img1, img2[:-1], gt)
    with pytest.raises(ValueError, match="octaves"):
        variational_refine(img1, img2, gt, octaves=0)
    with pytest.raises(ValueError, match="omega"):
        variational_refine(img1, img2, gt, omega=2.5)
    with pytest.raises(ValueError, match="alpha"):
        variational_refine(img1, img2, gt, alpha=-1)
    with pytest.raises(ValueError, match="fixed_point_iterations"):
        variational_refine(img1, img2, gt, fixed_point_iterations=1.5)
