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

A color picture means little without its key: :func:`legend_image` draws the wheel with the magnitude (px) at which
colors saturate, and :func:`add_legend` puts it beside a picture. :func:`draw_text` writes labels with OpenCV's
built-in vector font (no font file needed).
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


_WHEEL = make_colorwheel().astype(np.float64)  # the same for every call; float64 so that wheel entries stay exact


def flow_scale(flow: np.ndarray, valid: np.ndarray | None = None) -> float:
    """The magnitude (px) that :func:`flow_to_color` saturates at without ``max_flow``: the largest magnitude among
    the known pixels of ``flow`` (HxWx2; ``valid`` an optional HxW bool), or 1.0 when there is no motion at all."""
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {arr.shape}")
    uv = arr.astype(np.float64)
    known = _known(uv, valid)
    if not known.all():
        uv[~known] = 0.0
    mags = np.hypot(uv[..., 0], uv[..., 1])
    scale = float(mags.max()) if mags.size else 0.0
    return scale if scale > 0.0 else 1.0


def _known(uv: np.ndarray, valid: np.ndarray | None) -> np.ndarray:
    """HxW bool: pixels whose flow is finite, below the unknown marker and ``valid``."""
    with np.errstate(invalid="ignore"):
        known = (np.abs(uv[..., 0]) <= UNKNOWN_THRESHOLD) & (np.abs(uv[..., 1]) <= UNKNOWN_THRESHOLD)  # NaN: False
    if valid is not None:
        vmask = np.asarray(valid)
        if vmask.shape != uv.shape[:2]:
            raise ValueError(f"valid must be (H, W) = {uv.shape[:2]}, got {vmask.shape}")
        known &= vmask.astype(bool)
    return known


def _color_normalized(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Colors (HxWx3 uint8) for flow already divided by the scale.

    Channel by channel on flat arrays: the same float64 operations in the same order as the reference (so the same
    bits), without HxWx3 float temporaries, which made it three times slower."""
    ncols = _WHEEL.shape[0]
    # +0.0 turns -0.0 into +0.0 so that the sign of a zero never flips the angle between -pi and pi.
    u = u + 0.0
    v = v + 0.0
    rad = np.hypot(u, v)
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1.0) / 2.0 * (ncols - 1)
    k0 = np.floor(fk).astype(np.intp)
    k1 = k0 + 1
    k1[k1 == ncols] = 0
    f = fk - k0
    g = 1.0 - f
    inside = rad <= 1.0
    out = np.empty(u.shape + (3,), np.uint8)
    for c in range(3):
        wheel = _WHEEL[:, c]
        col = g * wheel[k0] + f * wheel[k1]
        out[..., c] = np.floor(np.where(inside, 255.0 - rad * (255.0 - col), col * 0.75))
    return out


def flow_to_color(flow: np.ndarray, max_flow: float | None = None, valid: np.ndarray | None = None) -> np.ndarray:
    """Color-code a flow field (HxWx2, u then v in pixels) with the Middlebury wheel.

    ``max_flow``: magnitude that gets the fully saturated hue; None means the largest valid magnitude
    in this frame (:func:`flow_scale`). ``valid``: optional HxW bool; unknown pixels (invalid, NaN/inf,
    |component| > 1e9) are black. Zero flow is white. Returns HxWx3 uint8 RGB.
    """
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"flow must be a numeric array, got dtype {arr.dtype}")
    uv = arr.astype(np.float64)
    known = _known(uv, valid)
    all_known = bool(known.all())
    if not all_known:
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
    out = _color_normalized(uv[..., 0] / scale, uv[..., 1] / scale)
    if not all_known:
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


# ---------------------------------------------------------------------------------------------------- labels

LEGEND_BACKGROUND = (40, 40, 40)  # dark grey: the wheel's white center and saturated edge both stand out
TEXT_COLOR = (255, 255, 255)
MIN_LEGEND_HEIGHT = 48  # below this the wheel and its label are unreadable; shorter pictures get padded
_FONT_CAP = 22.0  # cap height in pixels of cv2.FONT_HERSHEY_SIMPLEX at scale 1


def text_size(text: str, height: int) -> tuple[int, int]:
    """``(width, height)`` in pixels of ``text`` drawn by :func:`draw_text` with capitals ``height`` pixels tall
    (the height includes descenders)."""
    import cv2

    scale = height / _FONT_CAP
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, _thickness(height))
    return int(w), int(h + base)


def _thickness(height: int) -> int:
    return max(1, int(round(height / 14)))


def draw_text(canvas: np.ndarray, text: str, x: int, y: int, height: int, color=TEXT_COLOR) -> None:
    """Write ``text`` into ``canvas`` (HxWx3 uint8, changed in place) with its top-left corner at (x, y) and capitals
    ``height`` pixels tall, anti-aliased, in OpenCV's vector font."""
    import cv2

    scale = height / _FONT_CAP
    (_, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, _thickness(height))
    cv2.putText(canvas, text, (int(x), int(y + h)), cv2.FONT_HERSHEY_SIMPLEX, scale, tuple(int(c) for c in color),
                _thickness(height), cv2.LINE_AA)


def fit_text_height(text: str, width: int, height: int, minimum: int = 7) -> int:
    """The largest capital height <= ``height`` (and >= ``minimum``) at which ``text`` fits in ``width`` pixels."""
    h = int(height)
    while h > minimum and text_size(text, h)[0] > width:
        h -= 1
    return max(h, minimum)


def px_text(value: float) -> str:
    """A magnitude for a label: ``0.53 px``, ``12.3 px``, ``148 px``."""
    v = float(value)
    if v >= 100:
        return f"{v:.0f} px"
    if v >= 10:
        return f"{v:.1f} px"
    return f"{v:.2f} px"


def legend_image(max_flow: float, height: int = 160) -> np.ndarray:
    """The key of a color picture: the Middlebury wheel on a dark strip, with the magnitude of full saturation
    (the wheel's edge, ``max_flow`` pixels) written under it, both centered vertically.

    ``height`` is the strip's height in pixels (at least :data:`MIN_LEGEND_HEIGHT`); the wheel is at most 160 px
    across. Returns height x width x 3 uint8 RGB, the width even (video encoders want even sizes)."""
    scale = float(max_flow)
    if not np.isfinite(scale) or scale <= 0.0:
        raise ValueError(f"max_flow must be a positive number, got {max_flow!r}")
    height = max(int(height), MIN_LEGEND_HEIGHT)
    margin = max(3, height // 24)
    label = f"max {px_text(scale)}"
    th = int(np.clip(height // 9, 8, 16))
    tw, tsz = text_size(label, th)
    diameter = int(min(160, height - 3 * margin - tsz))
    diameter = max(diameter, 16)
    width = max(diameter, tw) + 2 * margin
    width += width % 2
    out = np.empty((height, width, 3), np.uint8)
    out[:] = LEGEND_BACKGROUND
    top = (height - (diameter + margin + tsz)) // 2
    left = (width - diameter) // 2
    wheel = color_wheel_legend(diameter)
    c = (diameter - 1) / 2.0
    yy, xx = np.mgrid[:diameter, :diameter]
    disk = np.hypot(xx - c, yy - c) <= c
    out[top:top + diameter, left:left + diameter][disk] = wheel[disk]
    draw_text(out, label, (width - tw) // 2, top + diameter + margin, th)
    return out


def add_legend(image: np.ndarray, max_flow: float) -> np.ndarray:
    """``image`` (HxWx3 uint8, a color picture of flow) with :func:`legend_image` for ``max_flow`` on its right; a
    picture shorter than :data:`MIN_LEGEND_HEIGHT` is padded below with the legend's background. Returns a new
    uint8 RGB image, as tall as the taller of the two."""
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8, got {img.shape} {img.dtype}")
    h = img.shape[0]
    legend = legend_image(max_flow, h)
    if legend.shape[0] > h:
        pad = np.empty((legend.shape[0] - h, img.shape[1], 3), np.uint8)
        pad[:] = LEGEND_BACKGROUND
        img = np.concatenate([img, pad], axis=0)
    return np.concatenate([img, legend], axis=1)
