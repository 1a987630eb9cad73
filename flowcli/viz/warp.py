"""Backward warping and error maps for checking a flow field by eye.

* :func:`warp_image` pulls frame 2 into frame 1's pixel grid along the flow (bilinear, OpenCV remap).
  If the flow is right, the warped frame looks like frame 1 wherever the point is visible in both.
* :func:`photometric_error` and :func:`epe_map` give per-pixel errors; pixels that have no defined
  error (sample point outside frame 2, unknown ground truth) are NaN, never 0, so that means taken
  with ``np.nanmean`` are not diluted by them.
* :func:`error_to_color` turns an error map into a heat map; :func:`make_panel` lays out
  frame 1 | flow colors | warped frame 2 | error side by side as one RGB image.
"""
from __future__ import annotations

import numpy as np

from flowcli.io.image import as_rgb8
from flowcli.viz.color import flow_to_color

# Dtypes cv2.remap interpolates natively.
_REMAP_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def _check_flow(flow: np.ndarray, shape: tuple[int, ...] | None = None, name: str = "flow") -> np.ndarray:
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise ValueError(f"{name} must be (H, W, 2), got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if shape is not None and arr.shape[:2] != tuple(shape[:2]):
        raise ValueError(f"{name} is {arr.shape[:2]} but the image is {tuple(shape[:2])} (H, W)")
    return arr


def warp_image(image2: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Backward-warp ``image2`` into frame 1: ``warped[y, x] = image2[y + v, x + u]`` (bilinear).

    ``image2``: HxW or HxWxC array (uint8, uint16, int16, float32 or float64); ``flow``: HxWx2 from
    frame 1 to frame 2. Returns ``(warped, inside)``: warped has image2's shape and dtype; inside (HxW
    bool) is True where the sample point (x + u, y + v) lies within frame 2 (0 <= x+u <= W-1,
    0 <= y+v <= H-1) and the flow is finite. Pixels not inside are 0 in ``warped``.
    """
    import cv2

    img = np.asarray(image2)
    if img.ndim not in (2, 3) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"image2 must be HxW or HxWxC, got shape {img.shape}")
    if img.dtype.type not in _REMAP_DTYPES:
        raise ValueError(f"image2 has dtype {img.dtype}; warp_image supports uint8, uint16, int16, "
                         "float32 and float64")
    fl = _check_flow(flow, img.shape)
    h, w = img.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = gx + fl[:, :, 0].astype(np.float32)
    map_y = gy + fl[:, :, 1].astype(np.float32)
    finite = np.isfinite(map_x) & np.isfinite(map_y)
    inside = finite & (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    # NaN coordinates have no defined meaning to remap; send them well outside the frame instead.
    map_x[~finite] = -16.0
    map_y[~finite] = -16.0

    def remap(plane: np.ndarray) -> np.ndarray:
        return cv2.remap(np.ascontiguousarray(plane), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    if img.ndim == 2:
        warped = remap(img)
    elif img.shape[2] <= 4:
        warped = remap(img).reshape(img.shape)  # remap drops a trailing axis of length 1
    else:  # remap handles at most 4 channels: do the rest plane by plane
        warped = np.stack([remap(img[:, :, c]) for c in range(img.shape[2])], axis=2)
    # Points just outside the frame were blended with the zero border; make "outside" uniformly 0.
    warped[~inside] = 0
    return warped, inside


def photometric_error(image1: np.ndarray, warped: np.ndarray, inside: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel mean absolute difference over channels between ``image1`` and ``warped``.

    Both are HxW or HxWxC of the same shape; the error is in their intensity units (0..255 for uint8).
    Returns HxW float32, NaN where ``inside`` (optional HxW bool) is False.
    """
    a = np.asarray(image1)
    b = np.asarray(warped)
    if a.shape != b.shape:
        raise ValueError(f"image1 and warped must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"images must be HxW or HxWxC, got shape {a.shape}")
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32))
    err = diff.mean(axis=2, dtype=np.float32) if diff.ndim == 3 else diff
    err = np.asarray(err, dtype=np.float32)
    if inside is not None:
        m = np.asarray(inside, dtype=bool)
        if m.shape != err.shape:
            raise ValueError(f"inside must be (H, W) = {err.shape}, got {m.shape}")
        err[~m] = np.nan
    return err


def epe_map(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """End-point error |flow - gt| per pixel (HxW float32, pixels); NaN where ``valid`` is False or
    either flow is not finite. ``flow`` and ``gt`` are HxWx2; ``valid`` is an optional HxW bool.
    """
    f = _check_flow(flow)
    g = _check_flow(gt, f.shape, name="gt")
    d = f.astype(np.float32) - g.astype(np.float32)
    err = np.sqrt(d[:, :, 0] ** 2 + d[:, :, 1] ** 2).astype(np.float32)  # NaN propagates
    if valid is not None:
        m = np.asarray(valid, dtype=bool)
        if m.shape != err.shape:
            raise ValueError(f"valid must be (H, W) = {err.shape}, got {m.shape}")
        err[~m] = np.nan
    return err


def error_to_color(err: np.ndarray, max_err: float | None = None) -> np.ndarray:
    """Heat map of an HxW error map: HxWx3 uint8 RGB with OpenCV's "turbo" colormap.

    0 is dark blue, ``max_err`` and above dark red; ``max_err`` None uses the largest finite error.
    Non-finite pixels (NaN: no error defined) are black, a color turbo never produces.
    """
    import cv2

    e = np.asarray(err, dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"err must be an HxW map, got shape {e.shape}")
    finite = np.isfinite(e)
    if max_err is None:
        scale = float(e[finite].max()) if finite.any() else 0.0
        if scale <= 0.0:
            scale = 1.0
    else:
        scale = float(max_err)
        if not np.isfinite(scale) or scale <= 0.0:
            raise ValueError(f"max_err must be a positive number, got {max_err!r}")
    level = np.zeros(e.shape, np.uint8)
    level[finite] = np.round(np.clip(e[finite] / scale, 0.0, 1.0) * 255.0).astype(np.uint8)
    rgb = cv2.applyColorMap(level, cv2.COLORMAP_TURBO)[:, :, ::-1].copy()
    rgb[~finite] = 0
    return rgb


def make_panel(image1: np.ndarray, flow: np.ndarray, warped: np.ndarray, error: np.ndarray,
               max_flow: float | None = None, max_err: float | None = None,
               valid: np.ndarray | None = None) -> np.ndarray:
    """One preview image: frame 1 | flow colors | warped frame 2 | error heat map, side by side.

    ``image1`` and ``warped`` are anything :func:`flowcli.io.as_rgb8` accepts; ``flow`` is HxWx2
    (colored with :func:`flow_to_color`, using ``max_flow`` and ``valid``); ``error`` is an HxW map
    (colored with :func:`error_to_color` and ``max_err``) or an already colored HxWx3 image.
    Returns H x 4W x 3 uint8 RGB; save it with :func:`flowcli.io.write_image`.
    """
    tile1 = as_rgb8(image1, name="image1")
    h, w = tile1.shape[:2]
    fl = _check_flow(flow, (h, w))
    tile3 = as_rgb8(warped, name="warped")
    err = np.asarray(error)
    tile4 = error_to_color(err, max_err) if err.ndim == 2 else as_rgb8(err, name="error")
    for name, tile in (("warped", tile3), ("error", tile4)):
        if tile.shape[:2] != (h, w):
            raise ValueError(f"{name} is {tile.shape[:2]} but image1 is {(h, w)} (H, W)")
    tile2 = flow_to_color(fl, max_flow=max_flow, valid=valid)
    return np.concatenate([tile1, tile2, tile3, tile4], axis=1)
