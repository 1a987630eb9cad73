"""Occlusion from forward-backward consistency (Sundaram, Brox & Keutzer, ECCV 2010; used by UnFlow,
Meister et al. 2018).

With forward flow f (frame 1 -> 2) and backward flow b (frame 2 -> 1), a pixel x of frame 1 is
consistent when following f and then b brings it back::

    |f(x) + b(x + f(x))|^2 < alpha * (|f(x)|^2 + |b(x + f(x))|^2) + beta

``b(x + f(x))`` is sampled bilinearly. The defaults alpha = 0.01 and beta = 0.5 are those of
Sundaram et al. and UnFlow: the tolerance grows with the motion (alpha) plus half a squared pixel
for estimation noise (beta). Pixels whose f points outside frame 2, or with non-finite flow, are
counted as not consistent (they have no visible match in frame 2).
"""
from __future__ import annotations

import numpy as np

from flowcli.viz.warping import check_flow, warp_image

DEFAULT_ALPHA = 0.01
DEFAULT_BETA = 0.5


def fb_consistency(forward: np.ndarray, backward: np.ndarray, alpha: float = DEFAULT_ALPHA,
                   beta: float = DEFAULT_BETA) -> np.ndarray:
    """Forward-backward consistency mask: HxW bool, True where the pixel is consistent (visible).

    ``forward`` and ``backward`` are HxWx2 flows of the same size (frame 1 -> 2 and 2 -> 1).
    See the module docstring for the test and the defaults.
    """
    f = check_flow(forward, name="forward").astype(np.float32)
    b = check_flow(backward, f.shape, name="backward").astype(np.float32)
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha!r}, beta={beta!r}")
    b_at = np.nan_to_num(b, nan=0.0, posinf=0.0, neginf=0.0)  # remap must not see NaN; masked below
    b_warped, inside = warp_image(b_at, f)
    s = f + b_warped
    lhs = (s * s).sum(axis=2)
    rhs = alpha * ((f * f).sum(axis=2) + (b_warped * b_warped).sum(axis=2)) + beta
    with np.errstate(invalid="ignore"):
        ok = inside & (lhs < rhs)
    # A NaN backward vector next to the sample point poisons the comparison: treat it as inconsistent.
    bad_b = ~np.isfinite(b).all(axis=2)
    if bad_b.any():
        touched, _ = warp_image(bad_b.astype(np.float32), f)
        ok &= touched == 0
    return ok


def occlusion_mask(forward: np.ndarray, backward: np.ndarray, alpha: float = DEFAULT_ALPHA,
                   beta: float = DEFAULT_BETA) -> np.ndarray:
    """HxW bool, True where frame 1's pixel is occluded (or leaves the frame): ``~fb_consistency``."""
    return ~fb_consistency(forward, backward, alpha=alpha, beta=beta)
