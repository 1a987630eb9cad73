"""Backward warping (spec §4.2): sample ``x`` at ``grid + flow`` bilinearly, zeros outside, no validity mask.

A neighbour of the bilinear footprint that lies outside the image contributes zero and the remaining weights are
*not* renormalised, exactly like Caffe's ``Warp`` layer and the public PyTorch port. Gradients reach both the
input and the flow.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

_GRIDS: dict[tuple, torch.Tensor] = {}


def _base_grid(h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (h, w, device, dtype)
    grid = _GRIDS.get(key)
    if grid is None:
        ys = torch.arange(h, device=device, dtype=dtype)
        xs = torch.arange(w, device=device, dtype=dtype)
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), 0).unsqueeze(0)  # 1x2xHxW, channel 0 = x
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        _GRIDS[key] = grid
    return grid


def backward_warp(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Warp ``x`` (NxCxHxW) toward the first frame with ``flow`` (Nx2xHxW, pixels of this grid, channel 0 = x).

    Returns NxCxHxW. Pixel coordinates are normalised for ``align_corners=False`` as ``(2p + 1)/size - 1``, which
    puts pixel centres exactly where Caffe's pixel-coordinate warp puts them and, unlike the port's ``(W - 1)``
    normalisation, stays finite for a 1-pixel-wide level (inputs down to 32x32).
    """
    if x.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2 or flow.shape[2:] != x.shape[2:] or flow.shape[0] != x.shape[0]:
        raise ValueError(f"backward_warp needs NxCxHxW and Nx2xHxW of one size, got {tuple(x.shape)} and {tuple(flow.shape)}")
    n, _, h, w = x.shape
    coords = _base_grid(h, w, flow.device, flow.dtype) + flow
    gx = (2.0 * coords[:, 0] + 1.0) / w - 1.0
    gy = (2.0 * coords[:, 1] + 1.0) / h - 1.0
    grid = torch.stack((gx, gy), dim=3)
    if grid.dtype != x.dtype:
        grid = grid.to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
