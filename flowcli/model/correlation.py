"""Cost volume (spec §4.1): LiteFlowNet's correlation with kernel 1 and a 7x7 displacement grid.

``corr(f0, f1, stride=s)[n, j*7 + i, y, x] = mean_c f0[n, c, s*y, s*x] * f1[n, c, s*y + s*(j-3), s*x + s*(i-3)]``

with ``f1`` zero outside the image (so border samples contribute 0 while the normaliser stays C), output grid
``ceil(H/s) x ceil(W/s)``, and channels row-major with the vertical displacement as the slow index. Stride 1 is used
at levels 6..4, stride 2 (even positions, even displacements) at levels 3 and 2.

Two pure-PyTorch implementations live here: :func:`correlation_reference`, one step per displacement, easy to read
and used as the reference in the tests; and :func:`correlation_unfold`, which gathers all 49 shifted copies at once
and reduces them over channels in one product (no Python loop over displacements). Both run on CPU and CUDA and are
differentiable. :func:`correlation` picks the fast one.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

GRID = 7  # displacements per axis
RADIUS = GRID // 2


def _check(f0: torch.Tensor, f1: torch.Tensor, stride: int) -> None:
    if f0.dim() != 4 or f0.shape != f1.shape:
        raise ValueError(f"correlation needs two NxCxHxW tensors of one shape, got {tuple(f0.shape)} and {tuple(f1.shape)}")
    if stride not in (1, 2):
        raise ValueError(f"correlation stride must be 1 or 2, got {stride}")


def correlation_reference(f0: torch.Tensor, f1: torch.Tensor, *, stride: int = 1) -> torch.Tensor:
    """Reference cost volume: one multiply-and-mean per displacement. Takes NxCxHxW twice, returns Nx49xH'xW'."""
    _check(f0, f1, stride)
    n, c, h, w = f0.shape
    pad = RADIUS * stride
    f1p = F.pad(f1, (pad, pad, pad, pad))
    a = f0[:, :, ::stride, ::stride]
    ho, wo = a.shape[2], a.shape[3]
    out = []
    for j in range(GRID):  # dy, slow index
        for i in range(GRID):  # dx, fast index
            b = f1p[:, :, j * stride: j * stride + h: stride, i * stride: i * stride + w: stride]
            out.append((a * b[:, :, :ho, :wo]).sum(1) / c)
    return torch.stack(out, 1)


def correlation_unfold(f0: torch.Tensor, f1: torch.Tensor, *, stride: int = 1, max_elements: int = 2 ** 24) -> torch.Tensor:
    """Vectorised cost volume: ``unfold`` gathers the 7x7 neighbourhood of every output position and one
    multiply-and-sum reduces over channels. Same contract as :func:`correlation_reference`.

    With stride 2 both the positions and the displacements are even, so only the even rows and columns of either
    map are ever read: the stride-2 volume is the stride-1 volume of the two decimated maps (4x less work).
    The gathered tensor is C*49 times the output grid, so rows are processed in bands of at most
    ``max_elements`` gathered values to bound memory on large frames.
    """
    _check(f0, f1, stride)
    c = f0.shape[1]
    if stride == 2:
        f0, f1 = f0[:, :, ::2, ::2], f1[:, :, ::2, ::2]
    n, _, ho, wo = f0.shape
    f1p = F.pad(f1, (RADIUS, RADIUS, RADIUS, RADIUS))
    band = max(1, min(ho, max_elements // max(1, n * c * GRID * GRID * wo)))
    out = []
    for y0 in range(0, ho, band):  # bands of rows (memory), not displacements
        y1 = min(ho, y0 + band)
        cols = F.unfold(f1p[:, :, y0: y1 + 2 * RADIUS], kernel_size=GRID)  # N x C*49 x (rows*wo)
        cols = cols.view(n, c, GRID * GRID, (y1 - y0) * wo)
        lhs = f0[:, :, y0:y1].reshape(n, c, 1, -1)
        # multiply-and-reduce over channels; a batched matmul here would be L tiny 1xC @ Cx49 products
        out.append((cols * lhs).sum(1).view(n, GRID * GRID, y1 - y0, wo))
    return torch.cat(out, 2) / c


def correlation(f0: torch.Tensor, f1: torch.Tensor, *, stride: int = 1) -> torch.Tensor:
    """LiteFlowNet cost volume (Nx49xH'xW'), computed by the fastest available pure-PyTorch path."""
    return correlation_unfold(f0, f1, stride=stride)
