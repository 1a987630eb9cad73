"""Per-pixel selection among candidate flows by a small learned scorer.

The census fusion of :mod:`flowcli.postprocess.fusion` keeps the candidate with the lowest matching cost. Where
motions are large that choice is often wrong over whole regions: in occlusions, motion blur and repeated texture the
wrong candidate matches as well as the right one, or better. A matching cost is still the strongest single clue, but
not the only one: whether the candidates agree with each other, how smooth a candidate is around the pixel, how large
its motion is, how much texture there is to match, and which method produced it (a network pass at full scale is
precise on small motions, one at a quarter scale reaches large ones, DIS is precise where there is texture).

:func:`selection_features` turns each candidate into a stack of such per-pixel features (:data:`FEATURES`), all cheap
box filters and image warps. :class:`Selector` scores every candidate at every pixel with a tiny multilayer
perceptron over those features (a few hundred weights, trained by ``tools/train_selector.py`` on the project's own
synthetic pairs, where the true flow is known exactly, to minimise the expected ``log(1 + EPE)`` of the pick), smooths
the scores over a box so that the choice is made per region, and takes per pixel the best-scoring candidate. The
weights travel in the checkpoint's recipe metadata, as plain lists of numbers.

numpy and OpenCV only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from flowcli.postprocess.fusion import _as_gray, census_cost, census_offsets, census_transform
from flowcli.viz.warping import check_flow, warp_image

#: The kinds of candidate a selector knows (a one-hot feature each); a kind it was not trained on scores as "other".
KINDS = ("net", "net-coarse", "cascade", "dis", "deepflow", "other")

#: Feature names, in the order of :func:`selection_features`' second axis (the candidate kind one-hots follow them).
FEATURES = ("census_1", "census_5", "census_15", "census_31", "census_15_rel", "gray_5", "gray_15", "outside_5",
            "agree_min", "agree_median", "magnitude", "roughness", "texture")

#: Upper bounds on what a selector in a checkpoint's metadata may hold (it is untrusted input).
MAX_HIDDEN = 256
MAX_SMOOTH = 63


def _box(x: np.ndarray, k: int) -> np.ndarray:
    import cv2

    if k <= 1:
        return x
    return cv2.blur(x, (k, k), borderType=cv2.BORDER_REFLECT_101)


def selection_features(img1: np.ndarray, img2: np.ndarray, candidates: Sequence[np.ndarray],
                       kinds: Sequence[str]) -> np.ndarray:
    """Per-pixel features of each candidate flow: a (K, F, H, W) float32 array, F = len(FEATURES) + len(KINDS).

    ``img1``/``img2``: the frames (HxWx3 uint8 RGB, or anything :func:`flowcli.io.as_rgb8` takes); ``candidates``: K
    HxWx2 flows from frame 1 to frame 2; ``kinds``: each candidate's kind, one of :data:`KINDS`.
    Costs are the 9x9 sparse census cost (:func:`~flowcli.postprocess.fusion.census_cost`) and the absolute gray
    difference of frame 2 warped along the candidate, averaged over boxes of 1 to 31 pixels; agreement is the log
    distance to the nearest other candidate and to the per-pixel median of all; roughness is the log local standard
    deviation of the candidate over 5x5; texture is frame 1's log gradient magnitude over 5x5.
    """
    import cv2

    g1, g2 = _as_gray(img1, "img1"), _as_gray(img2, "img2")
    if g1.shape != g2.shape:
        raise ValueError(f"img1 and img2 must have the same size, got {g1.shape} and {g2.shape} (H, W)")
    if len(kinds) != len(candidates):
        raise ValueError(f"got {len(candidates)} candidates but {len(kinds)} kinds")
    cands = [check_flow(c, g1.shape, name=f"candidates[{i}]").astype(np.float32, copy=False)
             for i, c in enumerate(candidates)]
    if not cands:
        raise ValueError("candidates is empty: give at least one flow")
    nbits = float(len(census_offsets()))
    c1 = census_transform(g1)
    median = _median(cands)
    # distances between candidates, each pair once
    dist = {(i, j): np.hypot(*(cands[i] - cands[j]).transpose(2, 0, 1)) for i in range(len(cands))
            for j in range(i + 1, len(cands))}
    gx = cv2.Sobel(g1, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g1, cv2.CV_32F, 0, 1, ksize=3)
    texture = np.log1p(_box(np.sqrt(gx * gx + gy * gy), 5) / 8.0)
    k_count, (h, w) = len(cands), g1.shape
    out = np.zeros((k_count, len(FEATURES) + len(KINDS), h, w), np.float32)
    census15 = []
    for k, cand in enumerate(cands):
        warped, inside = warp_image(g2, cand)
        outside = (~inside).astype(np.float32)
        cost = census_cost(c1, census_transform(warped)).astype(np.float32) / nbits
        cost = np.maximum(cost, outside)  # a target outside frame 2 is a full mismatch
        gray = np.abs(warped - g1) / 255.0
        gray = np.maximum(gray, outside)
        f = out[k]
        f[0], f[1], f[2], f[3] = cost, _box(cost, 5), _box(cost, 15), _box(cost, 31)
        census15.append(f[2])
        f[5], f[6], f[7] = _box(gray, 5), _box(gray, 15), _box(outside, 5)
        others = [dist[min(k, j), max(k, j)] for j in range(k_count) if j != k]
        f[8] = np.log1p(np.minimum.reduce(others)) if others else 0.0
        f[9] = np.log1p(np.hypot(*(cand - median).transpose(2, 0, 1)))
        f[10] = np.log1p(np.hypot(cand[..., 0], cand[..., 1]))
        mean_u, mean_v = _box(cand[..., 0], 5), _box(cand[..., 1], 5)
        var = _box(cand[..., 0] * cand[..., 0], 5) - mean_u * mean_u + _box(cand[..., 1] * cand[..., 1], 5) - mean_v * mean_v
        f[11] = np.log1p(np.sqrt(np.maximum(var, 0.0)))
        f[12] = texture
        kind = kinds[k] if kinds[k] in KINDS else "other"
        f[len(FEATURES) + KINDS.index(kind)] = 1.0
    best15 = np.min(census15, axis=0)
    for k in range(k_count):
        out[k, 4] = out[k, 2] - best15
    return out


def _median(cands: list) -> np.ndarray:
    """Per-pixel median of the candidates (per component); min/max for two or three, which is several times faster
    than a general median over a stacked copy."""
    if len(cands) == 1:
        return cands[0]
    if len(cands) == 2:
        return (cands[0] + cands[1]) * np.float32(0.5)
    if len(cands) == 3:
        a, b, c = cands
        return np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
    return np.median(np.stack(cands), axis=0)


@dataclass(frozen=True)
class Selector:
    """A per-pixel candidate scorer: ``score = w2 . relu(W1^T x + b1) + b2`` over the features ``x`` of
    :func:`selection_features`, then the scores box-averaged over ``smooth`` x ``smooth`` pixels; the highest wins.

    ``w1`` is F x hidden, ``b1`` hidden, ``w2`` hidden, ``b2`` a number (plain lists or arrays). ``mean``/``std``
    standardise the features first (F numbers each)."""

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: float
    mean: np.ndarray
    std: np.ndarray
    smooth: int = 9

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Selector":
        """A selector from plain values (a recipe's ``selection`` mapping); ValueError naming what is wrong."""
        n_features = len(FEATURES) + len(KINDS)
        unknown = sorted(set(d) - {"method", "w1", "b1", "w2", "b2", "mean", "std", "smooth"})
        if unknown:
            raise ValueError(f"unknown selection setting(s): {', '.join(map(str, unknown))}")
        try:
            w1 = np.asarray(d["w1"], np.float32)
            b1, w2 = np.asarray(d["b1"], np.float32), np.asarray(d["w2"], np.float32)
            mean, std = np.asarray(d["mean"], np.float32), np.asarray(d["std"], np.float32)
            b2 = float(d["b2"])
        except KeyError as exc:
            raise ValueError(f"selection lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError):
            raise ValueError("selection weights must be lists of numbers") from None
        hidden = b1.shape[0] if b1.ndim == 1 else -1
        if not (0 < hidden <= MAX_HIDDEN and w1.shape == (n_features, hidden) and w2.shape == (hidden,)
                and mean.shape == (n_features,) and std.shape == (n_features,)):
            raise ValueError(f"selection weights have the wrong shapes: w1 {w1.shape}, b1 {b1.shape}, w2 {w2.shape}, "
                             f"mean {mean.shape}, std {std.shape} (expected {n_features} features, at most "
                             f"{MAX_HIDDEN} hidden units)")
        if not all(np.isfinite(a).all() for a in (w1, b1, w2, mean, std)) or not np.isfinite(b2) or (std <= 0).any():
            raise ValueError("selection weights must be finite, and std > 0")
        smooth = d.get("smooth", 9)
        if isinstance(smooth, bool) or not isinstance(smooth, int) or not 1 <= smooth <= MAX_SMOOTH:
            raise ValueError(f"selection smooth must be an integer in [1, {MAX_SMOOTH}], got {smooth!r}")
        return cls(w1, b1, w2, b2, mean, std, smooth)

    def to_dict(self) -> dict:
        return {"method": "learned", "w1": np.round(self.w1, 6).tolist(), "b1": np.round(self.b1, 6).tolist(),
                "w2": np.round(self.w2, 6).tolist(), "b2": round(float(self.b2), 6),
                "mean": np.round(self.mean, 6).tolist(), "std": np.round(self.std, 6).tolist(), "smooth": self.smooth}

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(K, F, H, W) features -> (K, H, W) smoothed scores (higher is better)."""
        k, f, h, w = features.shape
        # the standardisation folded into the first layer: (x - mean) / std . w1 = x . (w1 / std) - (mean / std) . w1
        w1 = (self.w1 / self.std[:, None]).T.astype(np.float32)  # hidden x F
        b1 = (self.b1 - (self.mean / self.std) @ self.w1).astype(np.float32)[:, None]
        out = np.empty((k, h, w), np.float32)
        for i in range(k):  # channels-first matrix products: no transposed copy of the features
            hidden = w1 @ features[i].reshape(f, h * w)
            hidden += b1
            np.maximum(hidden, 0.0, out=hidden)
            out[i] = _box((self.w2.astype(np.float32) @ hidden + np.float32(self.b2)).reshape(h, w), self.smooth)
        return out


def select_candidates(img1: np.ndarray, img2: np.ndarray, candidates: Sequence[np.ndarray], kinds: Sequence[str],
                      selector: Selector) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel the candidate ``selector`` scores best. Returns ``(flow, choice)``: the HxWx2 float32 flow and the
    HxW uint8 index of the candidate taken (ties keep the earlier candidate)."""
    if len(candidates) == 1:
        flow = check_flow(candidates[0]).astype(np.float32)
        return flow, np.zeros(flow.shape[:2], np.uint8)
    scores = selector.scores(selection_features(img1, img2, candidates, kinds))
    choice = np.argmax(scores, axis=0).astype(np.uint8)
    flow = np.take_along_axis(np.stack(candidates).astype(np.float32, copy=False),
                              choice[None, :, :, None].astype(np.intp), axis=0)[0]
    return np.ascontiguousarray(flow), choice
