"""Global alignment: the dominant translation between two frames, taken out before the flow is estimated.

A camera pan moves the whole frame by tens to hundreds of pixels: beyond the range a coarse-to-fine network or DIS
follows (their coarsest level sees a few pixels of a small image). Phase correlation finds such a translation in
milliseconds at any length up to half the frame, so an inference recipe can shift frame 2 back by it (whole pixels:
no resampling blur), estimate the remaining flow, which is then small where the pan dominates, and add the shift back
(for a translation the composition is exact). Only a shift that is long and that explains the frames, by making them
clearly more alike than they were, is taken; anything else leaves the pair as it is.

numpy and OpenCV only.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = ["dominant_translation", "global_offset", "shift_back"]


def _gray(img: np.ndarray, k: float) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    if k < 1:
        g = cv2.resize(g, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
    return g.astype(np.float64)


def _overlap_error(a: np.ndarray, b: np.ndarray, dx: int, dy: int) -> float:
    """Mean absolute difference of ``a[y, x]`` and ``b[y + dy, x + dx]`` over the pixels where both exist."""
    h, w = a.shape
    if abs(dx) >= w or abs(dy) >= h:
        return math.inf
    ya, yb = slice(max(0, -dy), min(h, h - dy)), slice(max(0, dy), min(h, h + dy))
    xa, xb = slice(max(0, -dx), min(w, w - dx)), slice(max(0, dx), min(w, w + dx))
    return float(np.abs(a[ya, xa] - b[yb, xb]).mean())


def dominant_translation(img1: np.ndarray, img2: np.ndarray, *, width: int = 256) -> tuple[float, float, float]:
    """``(dx, dy, gain)``: the translation that best maps frame 1 onto frame 2 (``img2[y + dy, x + dx] ~ img1[y, x]``),
    in pixels of the input, by phase correlation of the gray frames reduced to ``width`` pixels on their longer side
    (but never below 64 on the shorter one);
    ``gain`` is how much it explains: 1 - (mean absolute difference of the aligned overlap) / (that of the frames as
    they are), near 1 for a pan over texture, near 0 (or below) where the peak is noise."""
    k = min(1.0, max(width / max(img1.shape[:2]), 64 / min(img1.shape[:2])))  # a long thin frame keeps its rows
    a, b = _gray(img1, k), _gray(img2, k)
    window = cv2.createHanningWindow((a.shape[1], a.shape[0]), cv2.CV_64F)
    (dx, dy), _ = cv2.phaseCorrelate(a, b, window)
    before = _overlap_error(a, b, 0, 0)
    after = _overlap_error(a, b, int(round(dx)), int(round(dy)))
    gain = 1.0 - after / before if before > 0 else 0.0
    return dx / k, dy / k, gain


def global_offset(img1: np.ndarray, img2: np.ndarray, *, min_shift: float = 24.0, min_gain: float = 0.25,
                  width: int = 256) -> tuple[int, int]:
    """The whole-pixel translation to take out of a pair before estimating its flow: the dominant translation where
    it is at least ``min_shift`` pixels long and its ``gain`` (:func:`dominant_translation`) at least ``min_gain``;
    ``(0, 0)`` otherwise."""
    dx, dy, gain = dominant_translation(img1, img2, width=width)
    if math.hypot(dx, dy) < min_shift or gain < min_gain:
        return 0, 0
    return int(round(dx)), int(round(dy))


def shift_back(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """``out[y, x] = img[y + dy, x + dx]``, the border row or column repeated outside the frame (whole pixels: the
    values are the input's, never resampled)."""
    if dx == 0 and dy == 0:
        return img
    h, w = img.shape[:2]
    ys = np.clip(np.arange(h) + dy, 0, h - 1)
    xs = np.clip(np.arange(w) + dx, 0, w - 1)
    return np.ascontiguousarray(img[ys][:, xs])
