"""The paper's multi-scale training loss (spec §6.1).

Every M, S and R output of every active level is compared with the ground truth scaled by 1/20 and resampled to
that level's grid (no per-level rescaling: flows are stored in full-resolution pixels / 20). The per-pixel penalty
is the generalised Charbonnier ``(|d|^2 + eps)^q`` (q = 0.5, eps = 0.01 for pre-training: a smoothed EPE), summed
over pixels and divided by the batch size, as Caffe's ``L1Loss`` does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model.levels import LOSS_WEIGHTS
from ..model.liteflownet import FLOW_SCALE


def resample_label(flow: torch.Tensor, valid: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground truth Nx2xHxW (pixels) and validity NxHxW -> (label in scaled units, validity) on an hxw grid.

    Area-weighted (antialiased bilinear) averaging over valid pixels stands in for Caffe's tent-filter Downsample;
    a location counts as valid when at least half of its footprint was."""
    v = valid.unsqueeze(1).to(flow.dtype)
    label = flow / FLOW_SCALE * v
    if label.shape[2:] != size:
        label = F.interpolate(label, size=size, mode="bilinear", align_corners=False, antialias=True)
        v = F.interpolate(v, size=size, mode="bilinear", align_corners=False, antialias=True)
        label = label / v.clamp_min(1e-6)
    return label, v >= 0.5


def charbonnier(pred: torch.Tensor, label: torch.Tensor, mask: torch.Tensor, *, eps: float = 0.01, q: float = 0.5) -> torch.Tensor:
    """Sum over pixels of ``(|pred - label|^2 + eps)^q`` divided by the batch size; invalid pixels contribute the
    constant ``eps^q`` (no gradient), as Caffe does with NaN labels."""
    d2 = (pred.float() - label).pow(2).sum(1, keepdim=True)  # fp32 even when the forward ran under bf16 autocast
    d2 = torch.where(mask, d2, torch.zeros_like(d2))
    return (d2 + eps).pow(q).sum() / pred.shape[0]


def multiscale_loss(outputs: dict, flow: torch.Tensor, valid: torch.Tensor, *, eps: float = 0.01, q: float = 0.5,
                    weights: dict[int, float] = LOSS_WEIGHTS) -> torch.Tensor:
    """Weighted sum of the losses of every (level, unit) output in ``outputs`` (as returned by
    ``LiteFlowNet(..., return_all=True)``) against ground truth ``flow`` (Nx2xHxW pixels) and ``valid`` (NxHxW)."""
    total = flow.new_zeros(())
    labels: dict[tuple, tuple] = {}
    for key, pred in outputs.items():
        if not isinstance(key, tuple):
            continue
        level = key[0]
        size = tuple(pred.shape[2:])
        if size not in labels:
            labels[size] = resample_label(flow, valid, size)
        label, mask = labels[size]
        total = total + weights[level] * charbonnier(pred, label, mask, eps=eps, q=q)
    return total


def endpoint_error(pred_pixels: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean EPE (pixels) of a prediction on any grid (values in full-resolution pixels), upsampled to the label."""
    if pred_pixels.shape[2:] != flow.shape[2:]:
        pred_pixels = F.interpolate(pred_pixels, size=flow.shape[2:], mode="bilinear", align_corners=False)
    epe = (pred_pixels - flow).pow(2).sum(1).sqrt()
    v = valid.to(epe.dtype)
    return (epe * v).sum() / v.sum().clamp_min(1.0)
