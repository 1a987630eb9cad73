"""Middlebury color coding of optical flow (Baker et al., "A Database and Evaluation Methodology for
Optical Flow", IJCV 2011), as in their reference ``computeColor``/``flowToColor`` code.

The hue comes from the flow direction, the saturation from its magnitude:

* The color wheel has 55 hues in six segments, red -> yellow (15), yellow -> green (6),
  green -> cyan (4), cyan -> blue (11), blue -> magenta (13), magenta -> red (6); inside a segment
  one channel ramps by ``floor(255 * i / n)``.
* For a normalized flow (u, v): ``a = atan2(-v, -u) / pi`` and ``fk = (a + 1) / 2 * (55 - 1)``;
  the color is the linear blend of wheel entries ``floor(fk)`` and ``floor(fk) + 1`` (wrapping to 0).
  So +u (rightwards) is red, +v (downwards, image rows grow) is orange-yellow, -u is cyan-blue and
  -v (upwards) is violet-blue.
* Radius r = |(u, v)| <= 1 blends from white (r = 0) to the full hue (r = 1):
  ``255 - r * (255 - hue)``; r > 1 (beyond ``max_flow``) gives the full hue darkened to 75 %.
  The channel value is then floored to uint8, as the reference does.
* Normalization: by ``max_flow`` when given (fixed scale: needed for flicker-free video), else by the
  largest magnitude among the frame's valid pixels.
* Unknown pixels (``valid`` False, NaN/inf, or a component above 1e9 as in .flo files) are black.

Computation is done in 0..255 units in float64 so that hitting a wheel entry exactly gives exactly
its color (no 254.99999 -> 254 surprises).
"""
from __future__ import annotations

import numpy as np

# (length, constant channel, ramping channel, ramp direction) per segment, in wheel order.
# Channels: 0 = R, 1 = G, 2 = B. The constant channel is 255, the third channel is 0.
_SEGMENTS = (
    (15, 0, 1, +1),  # RY: R = 255, G rises
    (6, 1, 0, -1),   # YG: G = 255, R falls
    (4, 1, 2, +1),   # GC: G = 255, B rises
    (11, 2, 1, -1),  # CB: B = 255, G falls
    (13, 2, 0, +1),  # BM: B = 255, R rises
    (6, 0, 2, -1),   # MR: R = 255, B falls
)
UNKNOWN_THRESHOLD = 1e9


def make_colorwheel() -> np.ndarray:
    """Return the Middlebury color wheel: a (55, 3) uint8 array of RGB hues, starting at red."""
    rows = []
    for n, const, ramp, direction in _SEGMENTS:
        seg = np.zeros((n, 3), np.int64)
        seg[:, const] = 255
        up = (255 * np.arange(n)) // n  # integer floor(255 * i / n), exact
        seg[:, ramp] = up if direction > 0 else 255 - up
        rows.append(seg)
    return np.concatenate(rows).astype(np.uint8)


def _color_normalized(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colors (HxWx3 float64, 0..255, not yet floored) for flow already divided by the scale."""
    wheel = make_colorwheel().astype(np.float64)
    ncols = wheel.shape[0]
    # +0.0 turns -0.0 into +0.0 so that the sign of a zero never flips the angle between -pi and pi.
    u = u + 0.0
    v = v + 0.0
    rad = np.hypot(u, v)
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    k1 = k0 + 1
    k1[k1 == ncols] = 0
    f = (fk - k0)[..., None]
    col = (1.0 - f) * wheel[k0] + f * wheel[k1]
    inside = (rad <= 1.0)[..., None]
    return np.where(inside, 255.0 - rad[..., None] * (255.0 - col), col * 0.75)


def flow_to_color(flow: np.ndarray, max_flow: float | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """Color-code a flow field (HxWx2, u then v in pixels) with the Middlebury wheel.

    ``max_flow``: magnitude that gets the fully saturated hue; None means the largest valid magnitude
    in this frame. ``valid``: optional HxW bool; unknown pixels (invalid, NaN/inf, |component| > 1e9)
    are black. Zero flow is white. Returns HxWx3 uint8 RGB.
    """
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"flow must be a numeric array, got dtype {arr.dtype}")
    uv = arr.astype(np.float64)
    with np.errstate(invalid="ignore"):
        known = (np.abs(uv) <= UNKNOWN_THRESHOLD).all(axis=2)  # False for NaN too
    if valid is not None:
        vmask = np.asarray(valid)
        if vmask.shape != arr.shape[:2]:
            raise ValueError(f"valid must be (H, W) = {arr.shape[:2]}, got {vmask.shape}")
        known &= vmask.astype(bool)
    uv[~known] = 0.0
    if max_flow is None:
        mags = np.hypot(uv[..., 0], uv[..., 1])
        scale = float(mags.max()) if mags.size else 0.0
        if scale <= 0.0:
            scale = 1.0  # all-zero flow: any scale gives white
    else:
        scale = float(max_flow)
        if not np.isfinite(scale) or scale <= 0.0:
            raise ValueError(f"max_flow must be a positive number, got {max_flow!r}")
    col = _color_normalized(uv[..., 0] / scale, uv[..., 1] / scale)
    out = np.floor(col).astype(np.uint8)
    out[~known] = 0
    return out


def color_wheel_legend(size: int = 256) -> np.ndarray:
    """A size x size RGB uint8 legend: the pixel at offset (dx, dy) from the center shows the color of
    flow (dx, dy) / radius with ``max_flow`` = 1, so the disk edge is full saturation; outside is black.
    """
    size = int(size)
    if size < 3:
        raise ValueError(f"legend size must be at least 3 pixels, got {size}")
    c = (size - 1) / 2.0
    coords = (np.arange(size, dtype=np.float64) - c) / c
    u, v = np.meshgrid(coords, coords)  # rows grow downwards: +v is down, as in image flow
    flow = np.stack([u, v], axis=2)
    return flow_to_color(flow, max_flow=1.0, valid=np.hypot(u, v) <= 1.0)
