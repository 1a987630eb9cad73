"""Per-level settings of NetE (spec §3.1), in one table.

Index ``i = level - 2`` everywhere (0 is level 2, 4 is level 6), as in the public checkpoints' key layout.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LevelSpec:
    level: int
    feat_channels: int  # NetC channels at this level
    match_channels: int  # channels M and S correlate/concatenate (64 at level 2 after a 1x1 conv)
    corr_stride: int  # 1 at levels 6..4, 2 at levels 3 and 2 (cost volume then upsampled x2)
    kernel: int  # last conv of M and S, and the window of R's local convolution
    r_feature_conv: bool  # R projects the features to 128 channels with a 1x1 conv (levels 4..2)

    @property
    def warp_scale(self) -> float:
        """k_l = 20 / 2^(l-1): scaled flow -> pixels of this level (spec §0)."""
        return 20.0 / 2 ** (self.level - 1)

    @property
    def has_upflow(self) -> bool:
        return self.level < 6

    @property
    def has_upcorr(self) -> bool:
        return self.corr_stride == 2

    @property
    def r_feature_channels(self) -> int:
        return 128 if self.r_feature_conv else self.feat_channels


LEVELS: tuple[LevelSpec, ...] = (
    LevelSpec(level=2, feat_channels=32, match_channels=64, corr_stride=2, kernel=7, r_feature_conv=True),
    LevelSpec(level=3, feat_channels=64, match_channels=64, corr_stride=2, kernel=5, r_feature_conv=True),
    LevelSpec(level=4, feat_channels=96, match_channels=96, corr_stride=1, kernel=5, r_feature_conv=True),
    LevelSpec(level=5, feat_channels=128, match_channels=128, corr_stride=1, kernel=3, r_feature_conv=False),
    LevelSpec(level=6, feat_channels=192, match_channels=192, corr_stride=1, kernel=3, r_feature_conv=False),
)

#: NetC: (in, out, stride) of each convolution, per pyramid level 1..6 (spec §2). Kernel 7 at level 1, else 3.
PYRAMID: tuple[tuple[tuple[int, int, int], ...], ...] = (
    ((3, 32, 1),),
    ((32, 32, 2), (32, 32, 1), (32, 32, 1)),
    ((32, 64, 2), (64, 64, 1)),
    ((64, 96, 2), (96, 96, 1)),
    ((96, 128, 2),),
    ((128, 192, 2),),
)

#: Training loss weight of each level's M, S and R outputs (spec §6.1).
LOSS_WEIGHTS = {6: 0.32, 5: 0.08, 4: 0.02, 3: 0.01, 2: 0.005}

#: Default per-channel means (B, G, R, in [0, 1]) subtracted from image 1 and image 2 (spec §1.1).
MEAN_IMAGE1 = (0.411618, 0.434631, 0.454253)
MEAN_IMAGE2 = (0.410782, 0.433645, 0.452793)
