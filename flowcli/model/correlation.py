"""Cost volume (spec §4.1): LiteFlowNet's correlation with kernel 1 and a 7x7 displacement grid.

``corr(f0, f1, stride=s)[n, j*7 + i, y, x] = mean_c f0[n, c, s*y, s*x] * f1[n, c, s*y + s*(j-3), s*x + s*(i-3)]``

with ``f1`` zero outside the image (so border samples contribute 0 while the normaliser stays C), output grid
``ceil(H/s) x ceil(W/s)``, and channels row-major with the vertical displacement as the slow index. Stride 1 is used
at levels 6..4, stride 2 (even positions, even displacements) at levels 3 and 2.

Two pure-PyTorch implementations live here: :func:`correlation_reference`, one step per displacement, easy to read
and used as the reference in the tests; and :func:`correlation_matmul`, which computes all 49 displacements of a
tile of positions in one small matrix product (no Python loop over displacements). Both run on CPU and CUDA and are
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


def correlation_matmul(f0: torch.Tensor, f1: torch.Tensor, *, stride: int = 1, tile: int = 16,
                       max_elements: int = 2 ** 24) -> torch.Tensor:
    """Cost volume as small matrix products, no Python loop over displacements. Same contract as
    :func:`correlation_reference`.

    Each row is cut into tiles of ``tile`` positions. All 49 displacements of a tile's positions read a window of
    7 rows x (tile + 6) columns of ``f1``, so one (tile x C) @ (C x 7*(tile+6)) product gives every dot product the
    tile needs (plus some it does not), and the band ``[t, dy, t + dx]`` is taken out as a strided view. This moves
    about 10 values per position and channel instead of the 49 of an unfold, and lets the GEMM kernels do the
    reduction (8x faster than unfold-multiply-sum on a 2-core CPU at 1024x436; benchmarks/bench_engine.py).

    With stride 2 both the positions and the displacements are even, so only the even rows and columns of either
    map are ever read: the stride-2 volume is the stride-1 volume of the two decimated maps (4x less work).
    Rows are processed in bands of at most ``max_elements`` window values to bound memory on large frames.
    """
    _check(f0, f1, stride)
    c = f0.shape[1]
    if stride == 2:
        f0, f1 = f0[:, :, ::2, ::2], f1[:, :, ::2, ::2]
    n, _, h, w = f0.shape
    span = tile + 2 * RADIUS  # window columns of one tile
    tiles = -(-w // tile)
    wp = tiles * tile
    # channels last: each position's C values contiguous, the layout the GEMMs read (free for channels_last input)
    a = F.pad(f0.permute(0, 2, 3, 1), (0, 0, 0, wp - w))  # N x H x Wp x C
    f1p = F.pad(f1.permute(0, 2, 3, 1), (0, 0, RADIUS, RADIUS + wp - w, RADIUS, RADIUS))  # N x H+6 x Wp+6 x C
    band = max(1, min(h, max_elements // max(1, n * c * GRID * span * tiles)))
    out = []
    for y0 in range(0, h, band):  # bands of rows (memory), not displacements
        y1 = min(h, y0 + band)
        # windows[n, y, k, c, dy, j] = f1p[n, y + dy, k*tile + j, c]  (views, copied once by the reshape)
        win = f1p[:, y0: y1 + 2 * RADIUS].unfold(1, GRID, 1).unfold(2, span, tile)
        win = win.reshape(n, y1 - y0, tiles, c, GRID * span)
        prod = torch.matmul(a[:, y0:y1].reshape(n, y1 - y0, tiles, tile, c), win)
        prod = prod.view(n, y1 - y0, tiles, tile, GRID, span)  # [.., t, dy, j]; displacement dx sits at j = t + dx
        diag = prod.unfold(5, GRID, 1).diagonal(dim1=3, dim2=5)  # [.., dy, dx, t]
        out.append(diag.permute(0, 3, 4, 1, 2, 5).reshape(n, GRID * GRID, y1 - y0, wp))
    return torch.cat(out, 2)[..., :w] / c


def correlation(f0: torch.Tensor, f1: torch.Tensor, *, stride: int = 1, impl: str = "matmul") -> torch.Tensor:
    """LiteFlowNet cost volume (Nx49xH'xW'). ``impl``: ``"matmul"`` (fast, default) or ``"reference"`` (one step per
    displacement: the plain baseline that benchmarks compare against)."""
    return IMPLEMENTATIONS[check_impl(impl)](f0, f1, stride=stride)


IMPLEMENTATIONS = {"matmul": correlation_matmul, "reference": correlation_reference}


def check_impl(impl: str) -> str:
    """``impl`` if it names a correlation implementation, else ValueError saying which exist."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"correlation impl must be one of {', '.join(IMPLEMENTATIONS)}, got {impl!r}")
    return impl
