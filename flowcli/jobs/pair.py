"""The pair job behind ``flowcli pair``: the pictures one flow field is shown with, and its statistics."""
from __future__ import annotations

from typing import Optional

import numpy as np

__all__ = ["MIN_SIZE", "flow_stats", "pictures"]

MIN_SIZE = 32  # the network's smallest input side (flowcli.api.MIN_SIZE, without importing torch)


def flow_stats(flow: np.ndarray) -> dict:
    """Mean and max magnitude (px) of the finite vectors of an HxWx2 flow."""
    mag = np.hypot(flow[..., 0], flow[..., 1])
    mag = mag[np.isfinite(mag)]
    return {"mean": float(mag.mean()) if mag.size else float("nan"),
            "max": float(mag.max()) if mag.size else float("nan")}


def pictures(img1: np.ndarray, img2: np.ndarray, flow: np.ndarray, backward: Optional[np.ndarray] = None, *,
             max_flow: Optional[float] = None, wanted=("viz", "warp", "panel", "occlusion")) -> dict:
    """The ``wanted`` pictures of ``flow`` as uint8 images: ``viz`` (Middlebury colors), ``warp`` (frame 2 warped back
    onto frame 1), ``panel`` (frame 1 | colors | warped | photometric error) and ``occlusion`` (white = occluded, by
    forward-backward check; needs ``backward``, and adds ``occluded_fraction``)."""
    from flowcli.viz import flow_to_color, make_panel, occlusion_mask, photometric_error, warp_image

    out: dict = {}
    if "viz" in wanted:
        out["viz"] = flow_to_color(flow, max_flow=max_flow)
    if "warp" in wanted or "panel" in wanted:
        warped, _ = warp_image(img2, flow)
        out["warp"] = warped
        if "panel" in wanted:
            out["panel"] = make_panel(img1, flow, warped, photometric_error(img1, warped), max_flow=max_flow)
    if "occlusion" in wanted and backward is not None:
        mask = occlusion_mask(flow, backward)
        out["occluded_fraction"] = float(mask.mean())
        out["occlusion"] = (mask * 255).astype(np.uint8)
    return out
