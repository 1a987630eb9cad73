"""Unit S, sub-pixel refinement (spec §3.3; Caffe ``*_D2_*``)."""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_stack
from .levels import LevelSpec
from .matching import level2_projection
from .warp import backward_warp


class SubpixelUnit(nn.Module):
    """Takes both images' features at one level and flow_M (scaled units); returns flow_S = flow_M + a residual
    inferred from [features of image 1, image-2 features warped by flow_M, flow_M]."""

    def __init__(self, spec: LevelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.feat = level2_projection(spec)
        self.main = conv_stack([2 * spec.match_channels + 2, 128, 64, 32], last_kernel=spec.kernel)

    def forward(self, feat1: torch.Tensor, feat2: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        feat1 = self.feat(feat1)
        feat2 = backward_warp(self.feat(feat2), flow * self.spec.warp_scale)
        return flow + self.main(torch.cat([feat1, feat2, flow], 1))
