"""Unit M, descriptor matching (spec §3.2; Caffe ``*_D1_*``)."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LRELU_SLOPE, bilinear_upsampler, conv_stack, lrelu
from .correlation import correlation
from .levels import LevelSpec
from .warp import backward_warp


def level2_projection(spec: LevelSpec) -> nn.Module:
    """The 1x1 conv 32->64 (+ leaky ReLU) that M and S apply to level-2 features; identity elsewhere.

    Caffe shares one such layer between M2 and S2; the public checkpoints hold two copies, so each unit owns one."""
    if spec.match_channels == spec.feat_channels:
        return nn.Sequential()
    return nn.Sequential(nn.Conv2d(spec.feat_channels, spec.match_channels, 1, 1, 0), lrelu())


class MatchingUnit(nn.Module):
    """Takes the features of both images at one level and the previous level's flow (scaled units, or None at
    level 6); returns flow_M = upsampled flow + a residual inferred from the cost volume on f-warped features."""

    def __init__(self, spec: LevelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.feat = level2_projection(spec)
        self.upflow = bilinear_upsampler(2) if spec.has_upflow else None
        self.upcorr = bilinear_upsampler(49) if spec.has_upcorr else None
        self.main = conv_stack([49, 128, 64, 32], last_kernel=spec.kernel)
        self.correlation_impl = "matmul"  # see correlation(); LiteFlowNet.set_correlation switches every level

    def forward(self, feat1: torch.Tensor, feat2: torch.Tensor, flow: Optional[torch.Tensor]) -> torch.Tensor:
        feat1 = self.feat(feat1)
        feat2 = self.feat(feat2)
        if flow is not None:
            flow = self.upflow(flow)  # no x2: flow is stored in full-resolution pixels / 20 (spec §0)
            feat2 = backward_warp(feat2, flow * self.spec.warp_scale)  # f-warp
        cost = F.leaky_relu(correlation(feat1, feat2, stride=self.spec.corr_stride, impl=self.correlation_impl), LRELU_SLOPE)
        if self.upcorr is not None:
            cost = self.upcorr(cost)  # stride-2 cost volume back to the level grid (after the activation)
        delta = self.main(cost)
        return delta if flow is None else flow + delta
