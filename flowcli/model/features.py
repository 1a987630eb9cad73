"""NetC (spec §2): the two-stream feature pyramid, one set of weights for both images."""
from __future__ import annotations

import torch
from torch import nn

from .layers import lrelu
from .levels import PYRAMID


class FeaturePyramid(nn.Module):
    """Takes an Nx3xHxW mean-subtracted BGR image; returns the features of pyramid levels 1..6
    (32, 32, 64, 96, 128, 192 channels at 1, 1/2, ..., 1/32 resolution)."""

    def __init__(self) -> None:
        super().__init__()
        self.levels = nn.ModuleList()
        for convs in PYRAMID:
            layers: list[nn.Module] = []
            for cin, cout, stride in convs:
                k = 7 if cin == 3 else 3
                layers += [nn.Conv2d(cin, cout, k, stride, k // 2), lrelu()]
            self.levels.append(nn.Sequential(*layers))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        x = image
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats
