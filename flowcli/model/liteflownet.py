"""LiteFlowNet (Hui, Tang, Loy, CVPR 2018) assembled from its blocks: NetC, then M -> S -> R at levels 6..2."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .correlation import check_impl
from .features import FeaturePyramid
from .levels import LEVELS, MEAN_IMAGE1, MEAN_IMAGE2
from .matching import MatchingUnit
from .regularization import RegularizationUnit
from .subpixel import SubpixelUnit

FLOW_SCALE = 20.0  # NetE stores flow as full-resolution pixels / 20 (spec §0)


class LiteFlowNet(nn.Module):
    """The original network.

    ``forward(image1, image2)`` takes two Nx3xHxW BGR images in [0, 1] whose sides are multiples of 32 (the caller
    resizes, see :mod:`flowcli.api`) and returns Nx2x(H/2)x(W/2) flow in pixels of the HxW input (the level-2 field
    times 20, spec §1.2). The per-image mean subtraction happens inside, as in the public port.

    ``forward(..., finest_level=L)`` stops after level L (stage-wise training; the output is then 20 x flow_R at
    level L, on that level's grid); ``skip_finest_r=True`` also leaves out R at level L (the paper's first stage
    trains M6:S6 alone). ``return_all=True`` returns a dict
    ``{(level, unit): flow}`` of every unit's output in scaled units (unit in "M", "S", "R"), plus ``"flow"``.
    """

    def __init__(self, *, mean1: Sequence[float] = MEAN_IMAGE1, mean2: Sequence[float] = MEAN_IMAGE2) -> None:
        super().__init__()
        self.features = FeaturePyramid()
        self.matching = nn.ModuleList(MatchingUnit(s) for s in LEVELS)
        self.subpixel = nn.ModuleList(SubpixelUnit(s) for s in LEVELS)
        self.regularization = nn.ModuleList(RegularizationUnit(s) for s in LEVELS)
        # model data, not learned: kept out of the state dict so that public checkpoints load unchanged
        self.register_buffer("mean1", torch.tensor(mean1, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("mean2", torch.tensor(mean2, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)

    def set_means(self, mean1: Sequence[float], mean2: Sequence[float]) -> None:
        self.mean1.copy_(torch.tensor(mean1, dtype=torch.float32).view(1, 3, 1, 1))
        self.mean2.copy_(torch.tensor(mean2, dtype=torch.float32).view(1, 3, 1, 1))

    def set_correlation(self, impl: str) -> "LiteFlowNet":
        """Use correlation ``impl`` ("matmul" or "reference", see :func:`~flowcli.model.correlation.correlation`) at
        every level; returns the network."""
        check_impl(impl)
        for unit in self.matching:
            unit.correlation_impl = impl
        return self

    @staticmethod
    def image_pyramid(image: torch.Tensor, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Images at each feature level by successive bilinear halving, as the public port does (spec §2.1)."""
        out = [image]
        for f in feats[1:]:
            out.append(F.interpolate(out[-1], size=f.shape[2:], mode="bilinear", align_corners=False))
        return out

    def forward(self, image1: torch.Tensor, image2: torch.Tensor, *, finest_level: int = 2, skip_finest_r: bool = False,
                return_all: bool = False):
        if image1.shape != image2.shape or image1.dim() != 4 or image1.shape[1] != 3:
            raise ValueError(f"LiteFlowNet needs two Nx3xHxW images of one shape, got {tuple(image1.shape)} and {tuple(image2.shape)}")
        if not 2 <= finest_level <= 6:
            raise ValueError(f"finest_level must be in 2..6, got {finest_level}")
        image1 = image1 - self.mean1.to(image1.dtype)
        image2 = image2 - self.mean2.to(image2.dtype)
        feats1 = self.features(image1)
        feats2 = self.features(image2)
        imgs1 = self.image_pyramid(image1, feats1)
        imgs2 = self.image_pyramid(image2, feats2)
        # level-1 features only feed level 2 of NetC; dropping them here frees the largest maps (2 GB at 4K)
        feats1[0] = feats2[0] = None
        outputs: dict = {}
        flow: Optional[torch.Tensor] = None
        for spec in reversed(LEVELS):
            if spec.level < finest_level:
                break
            i, li = spec.level - 2, spec.level - 1  # unit index; index into the level-1-based pyramid lists
            flow = self.matching[i](feats1[li], feats2[li], flow)
            outputs[(spec.level, "M")] = flow
            flow = self.subpixel[i](feats1[li], feats2[li], flow)
            outputs[(spec.level, "S")] = flow
            if skip_finest_r and spec.level == finest_level:
                break
            flow = self.regularization[i](imgs1[li], imgs2[li], feats1[li], flow)
            outputs[(spec.level, "R")] = flow
        outputs["flow"] = flow * FLOW_SCALE
        return outputs if return_all else outputs["flow"]


def build_liteflownet(*, mean1: Sequence[float] = MEAN_IMAGE1, mean2: Sequence[float] = MEAN_IMAGE2) -> LiteFlowNet:
    """A LiteFlowNet with fresh weights (He-normal convs, zero biases, fixed bilinear deconvolutions, unit scale
    convs), ready to train or to receive a checkpoint."""
    net = LiteFlowNet(mean1=mean1, mean2=mean2)
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv2d) and not name.endswith(("scale_x", "scale_y")):
            nn.init.kaiming_normal_(m.weight, a=0.0, mode="fan_in", nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return net
