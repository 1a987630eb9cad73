"""Pictures for judging a flow field by eye: error maps as heat maps and side-by-side panels.

* :func:`epe_map` gives the per-pixel end-point error against ground truth (NaN where it is unknown).
* :func:`error_to_color` turns an error map into a heat map; :func:`make_panel` lays out frame 1 | flow colors |
  warped frame 2 | error side by side as one RGB image, each tile titled with ``titles``.
* :func:`label_tiles` writes a title into the top-left corner of each tile of a picture made of tiles side by side.
"""
from __future__ import annotations

import numpy as np

from flowcli.io.image import as_rgb8
from flowcli.viz.color import draw_text, fit_text_height, flow_to_color, text_size
from flowcli.viz.warping import check_flow


def epe_map(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """End-point error |flow - gt| per pixel (HxW float32, pixels); NaN where ``valid`` is False or
    either flow is not finite. ``flow`` and ``gt`` are HxWx2; ``valid`` is an optional HxW bool.
    """
    f = check_flow(flow)
    g = check_flow(gt, f.shape, name="gt")
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
               valid: np.ndarray | None = None, titles=None) -> np.ndarray:
    """One preview image: frame 1 | flow colors | warped frame 2 | error heat map, side by side.

    ``image1`` and ``warped`` are anything :func:`flowcli.io.as_rgb8` accepts; ``flow`` is HxWx2
    (colored with :func:`flow_to_color`, using ``max_flow`` and ``valid``); ``error`` is an HxW map
    (colored with :func:`error_to_color` and ``max_err``) or an already colored HxWx3 image.
    ``titles``: four strings written into the tiles' corners (:func:`label_tiles`), or None for bare tiles.
    Returns H x 4W x 3 uint8 RGB; save it with :func:`flowcli.io.write_image`.
    """
    tile1 = as_rgb8(image1, name="image1")
    h, w = tile1.shape[:2]
    fl = check_flow(flow, (h, w))
    tile3 = as_rgb8(warped, name="warped")
    err = np.asarray(error)
    tile4 = error_to_color(err, max_err) if err.ndim == 2 else as_rgb8(err, name="error")
    for name, tile in (("warped", tile3), ("error", tile4)):
        if tile.shape[:2] != (h, w):
            raise ValueError(f"{name} is {tile.shape[:2]} but image1 is {(h, w)} (H, W)")
    tile2 = flow_to_color(fl, max_flow=max_flow, valid=valid)
    panel = np.concatenate([tile1, tile2, tile3, tile4], axis=1)
    return panel if titles is None else label_tiles(panel, titles)


def label_tiles(image: np.ndarray, titles) -> np.ndarray:
    """``image`` (HxWx3 uint8) cut into ``len(titles)`` tiles of equal width, side by side, with each title written
    white on a dark box in its tile's top-left corner; the box is half transparent, so what it covers still shows.
    The text is sized to the tile (capitals 1/14 of its height, 9 to 22 px) and shrunk to fit its width.
    Returns a new image of the same shape."""
    img = np.asarray(image)
    titles = list(titles)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(f"image must be HxWx3 uint8, got {img.shape} {img.dtype}")
    if not titles or img.shape[1] % len(titles):
        raise ValueError(f"an image {img.shape[1]} px wide does not split into {len(titles)} tiles of equal width")
    out = img.copy()
    h, tile_w = img.shape[0], img.shape[1] // len(titles)
    margin = max(2, h // 80)
    for k, title in enumerate(titles):
        if not title:
            continue
        th = fit_text_height(title, tile_w - 4 * margin, int(np.clip(h // 14, 9, 22)))
        tw, tsz = text_size(title, th)
        x0, x1 = k * tile_w, k * tile_w + min(tile_w, tw + 4 * margin)
        y1 = min(h, tsz + 3 * margin)
        box = out[:y1, x0:x1]
        box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken to 40 %: white text reads on any tile
        draw_text(out, title, x0 + 2 * margin, margin + margin // 2, th)
    return out
