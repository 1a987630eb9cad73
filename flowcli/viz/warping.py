"""Backward warping: frame 2 pulled into frame 1's pixel grid along a flow, and what is left of the difference.

* :func:`warp_image` pulls frame 2 into frame 1's pixel grid along the flow (bilinear, OpenCV remap).
  If the flow is right, the warped frame looks like frame 1 wherever the point is visible in both.
* :func:`photometric_error` gives the per-pixel difference; pixels whose sample point lies outside frame 2 are NaN,
  never 0, so that means taken with ``np.nanmean`` are not diluted by them.
* :func:`check_flow` is the shape check every flow-taking function of :mod:`flowcli.viz` and
  :mod:`flowcli.postprocess` shares.
"""
from __future__ import annotations

import numpy as np


# Dtypes cv2.remap interpolates natively.
_REMAP_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)


def check_flow(flow: np.ndarray, shape: tuple[int, ...] | None = None, name: str = "flow") -> np.ndarray:
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
    fl = check_flow(flow, img.shape)
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
