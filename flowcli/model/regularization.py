"""Unit R, flow regularisation by feature-driven local convolution (spec §3.4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv_stack, lrelu
from .levels import LevelSpec
from .warp import backward_warp


class RegularizationUnit(nn.Module):
    """Takes image 1 and image 2 at this level's resolution (mean-subtracted BGR), image 1's raw NetC features and
    flow_S (scaled units); returns flow_R, a locally weighted average of flow_S (not a residual).

    The weights of the w x w window come from a softmax over -D^2, where the 'distance' D is inferred from the
    brightness error (an occlusion cue), the mean-free flow and image-1 features."""

    def __init__(self, spec: LevelSpec) -> None:
        super().__init__()
        self.spec = spec
        w = spec.kernel
        self.feat = (nn.Sequential(nn.Conv2d(spec.feat_channels, 128, 1, 1, 0), lrelu())
                     if spec.r_feature_conv else nn.Sequential())
        self.main = conv_stack([3 + spec.r_feature_channels, 128, 128, 64, 64, 32, 32])
        if w == 3:
            self.dist = nn.Sequential(nn.Conv2d(32, w * w, w, 1, w // 2))
        else:  # separable w x 1 then 1 x w at levels 4..2, no activation between
            self.dist = nn.Sequential(nn.Conv2d(32, w * w, (w, 1), 1, (w // 2, 0)),
                                      nn.Conv2d(w * w, w * w, (1, w), 1, (0, w // 2)))
        # 1x1 'scale' convs realise the weighted sum; weight 1, bias 0 in Caffe (fixed), loadable here.
        self.scale_x = nn.Conv2d(w * w, 1, 1, 1, 0)
        self.scale_y = nn.Conv2d(w * w, 1, 1, 1, 0)
        with torch.no_grad():
            for conv in (self.scale_x, self.scale_y):
                conv.weight.fill_(1.0)
                conv.bias.zero_()

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, feat1: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        n, _, h, w_ = flow.shape
        k = self.spec.kernel
        warped = backward_warp(image2, flow * self.spec.warp_scale)
        # ChannelNorm; the clamp keeps the gradient finite where both images agree exactly (Caffe adds 1e-9 there)
        error = (image1 - warped).pow(2).sum(1, keepdim=True).clamp_min(1e-18).sqrt()
        mean_free = flow - flow.mean(dim=(2, 3), keepdim=True)
        x = self.main(torch.cat([error, mean_free, self.feat(feat1)], 1))
        dist = self.dist(x)
        logits = -dist.pow(2)
        # softmax written out so that it matches the deploy graph's ExpMax/divisor exactly
        weights = (logits - logits.max(1, keepdim=True)[0]).exp()
        inv_sum = weights.sum(1, keepdim=True).reciprocal()
        # zero-padded neighbourhoods: out-of-image neighbours count as 0 flow but keep their weight (spec §3.4)
        ux = F.unfold(flow[:, 0:1], k, padding=k // 2).view(n, k * k, h, w_)
        uy = F.unfold(flow[:, 1:2], k, padding=k // 2).view(n, k * k, h, w_)
        return torch.cat([self.scale_x(weights * ux) * inv_sum, self.scale_y(weights * uy) * inv_sum], 1)
