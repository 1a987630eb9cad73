"""Variational refinement of a flow field with OpenCV's ``cv2.VariationalRefinement``.

OpenCV minimises, starting from the given flow, an energy with a brightness-constancy term
(weight ``delta``), a gradient-constancy term (``gamma``) and a smoothness term (``alpha``), all
robust (Charbonnier, with ``epsilon``), by ``fixed_point_iterations`` outer linearisations each
solved with ``sor_iterations`` of successive over-relaxation (relaxation factor ``omega``); the
same refinement DIS runs as its last step (Kroeger et al., ECCV 2016; Brox et al., ECCV 2004).

Each linearisation only corrects motions of about a pixel, so :func:`variational_refine` runs it
coarse to fine over ``octaves`` levels of halved size: a coarse level can correct errors of a few
pixels, the finest restores the detail.

Defaults, measured on the real pairs of ``../shared/data/real`` (DIS medium flows, and DIS computed
at 1/2 and 1/4 size then upsampled, as inputs; see ``benchmarks/bench_postprocess.py``): OpenCV's own
alpha 20, delta 5, gamma 10 and epsilon 0.001 were as good as any tried (alpha 10-40, delta 2-10,
gamma 5-20); omega 1.9 gained a little over OpenCV's 1.6; 3 octaves beat 1, 2 and 4; 20 fixed-point
iterations beat 5 and 10 (30 gained little more for 50 % more time).
"""
from __future__ import annotations

import numpy as np

from flowcli.io.image import as_rgb8
from flowcli.viz.warping import check_flow

#: Defaults of :func:`variational_refine` (see the module docstring).
ALPHA = 20.0
DELTA = 5.0
GAMMA = 10.0
EPSILON = 0.001
SOR_ITERATIONS = 5
FIXED_POINT_ITERATIONS = 20
OMEGA = 1.9
OCTAVES = 3

# Levels smaller than this (shorter side, pixels) are skipped: too little image left to match.
MIN_OCTAVE_SIDE = 16


def _gray8(image: np.ndarray, name: str) -> np.ndarray:
    import cv2

    rgb = as_rgb8(image, name=name)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{name} is empty, got shape {np.shape(image)}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # VariationalRefinement takes 8-bit single channel


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(name: str, value, *, positive: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (positive and v == 0):
        raise ValueError(f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}")
    return v


def variational_refine(img1: np.ndarray, img2: np.ndarray, flow: np.ndarray, *, alpha: float = ALPHA,
                       delta: float = DELTA, gamma: float = GAMMA, epsilon: float = EPSILON,
                       sor_iterations: int = SOR_ITERATIONS,
                       fixed_point_iterations: int = FIXED_POINT_ITERATIONS, omega: float = OMEGA,
                       octaves: int = OCTAVES) -> np.ndarray:
    """Refine ``flow`` (frame 1 -> frame 2) by OpenCV's variational refinement, coarse to fine.

    ``img1``, ``img2``: HxWx3 uint8 RGB frames (anything :func:`flowcli.io.as_rgb8` accepts);
    they are refined on as 8-bit grayscale. ``flow``: HxWx2, finite everywhere (ValueError
    otherwise); it is not modified. ``alpha``, ``delta``, ``gamma``, ``epsilon``,
    ``sor_iterations``, ``fixed_point_iterations`` and ``omega`` are passed to the
    ``cv2.VariationalRefinement`` setters of the same names and apply at every level.
    ``octaves``: number of levels (1 = full resolution only). At each level from the coarsest
    (1/2**(octaves-1) size) to the finest, the frames are downscaled (cv2.INTER_AREA) and so is
    the current flow (vectors scaled by the size ratio); the refinement's change to the downscaled
    flow is upsampled bilinearly and added to the full-size flow. Levels whose shorter side would
    be under 16 pixels are skipped.

    Returns a new HxWx2 float32 flow.
    """
    g1 = _gray8(img1, "img1")
    g2 = _gray8(img2, "img2")
    if g1.shape != g2.shape:
        raise ValueError(f"img1 and img2 must have the same size, got {g1.shape} and {g2.shape} (H, W)")
    fl = check_flow(flow, g1.shape)
    if not np.isfinite(fl).all():
        bad = int((~np.isfinite(fl).all(axis=2)).sum())
        raise ValueError(f"flow must be finite everywhere, got {bad} pixel(s) with NaN or inf")
    octaves = _check_int("octaves", octaves, 1)
    vr = _solver(alpha, delta, gamma, epsilon, sor_iterations, fixed_point_iterations, omega)
    import cv2

    h, w = g1.shape
    current = np.array(fl, dtype=np.float32, copy=True)  # never write into the caller's array
    for level in range(octaves - 1, 0, -1):
        size = (max(1, round(w / 2 ** level)), max(1, round(h / 2 ** level)))  # (width, height)
        if min(size) < MIN_OCTAVE_SIDE:
            continue
        sx, sy = size[0] / w, size[1] / h
        small1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
        small2 = cv2.resize(g2, size, interpolation=cv2.INTER_AREA)
        start = cv2.resize(current, size, interpolation=cv2.INTER_AREA)
        start[:, :, 0] *= sx
        start[:, :, 1] *= sy
        refined = vr.calc(small1, small2, start.copy())
        # Add only the change: upsampling the whole coarse flow would blur the input's own detail
        # (e.g. sharp motion boundaries of a network flow) wherever the coarse level left it alone.
        change = cv2.resize(refined - start, (w, h), interpolation=cv2.INTER_LINEAR)
        current[:, :, 0] += change[:, :, 0] / sx
        current[:, :, 1] += change[:, :, 1] / sy
    return vr.calc(g1, g2, current)


def _solver(alpha, delta, gamma, epsilon, sor_iterations, fixed_point_iterations, omega):
    """A ``cv2.VariationalRefinement`` with the parameters checked and set."""
    import cv2

    omega = _check_float("omega", omega, positive=True)
    if not omega < 2.0:
        raise ValueError(f"omega must be in (0, 2) for SOR to converge, got {omega!r}")
    vr = cv2.VariationalRefinement_create()
    vr.setAlpha(_check_float("alpha", alpha))
    vr.setDelta(_check_float("delta", delta))
    vr.setGamma(_check_float("gamma", gamma))
    vr.setEpsilon(_check_float("epsilon", epsilon, positive=True))
    vr.setSorIterations(_check_int("sor_iterations", sor_iterations, 1))
    vr.setFixedPointIterations(_check_int("fixed_point_iterations", fixed_point_iterations, 1))
    vr.setOmega(omega)
    return vr
