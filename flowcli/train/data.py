"""Training batches: dataset samples -> augmented crops -> BGR float tensors.

A sample is a pure function of ``(seed, global index)``; the batch of step ``t`` on rank ``r`` of ``W`` holds
indices ``(t*W + r)*B .. (t*W + r)*B + B - 1``. That is what makes resume exact and keeps DDP ranks on disjoint data.
"""
from __future__ import annotations

from typing import Iterator, Optional

import numpy as np
import torch

from ..data.augment import augment_pair
from ..data.photos import load_photos
from ..data.synthetic import SyntheticFlow
from .config import Stage, TrainConfig

UNBOUNDED = 10 ** 12  # synthetic data never repeats within any run we can afford
# a rigid sample's image-2 transform is the augmentation's relative one scaled by a log-uniform factor in this range:
# translations of ~0.15-2.3 px std at a 256 px wide crop, rotations and zooms to match
STATIC_RELATIVE = (0.02, 0.3)


def _to_tensor_bgr(img: np.ndarray) -> torch.Tensor:
    arr = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1)))


def collate(samples: list[dict]) -> dict:
    """Samples (RGB uint8 or float [0, 1]) -> {img1, img2: Nx3xHxW BGR [0,1]; flow Nx2xHxW; valid NxHxW bool}."""
    out = {"img1": torch.stack([_to_tensor_bgr(s["img1"]) for s in samples]),
           "img2": torch.stack([_to_tensor_bgr(s["img2"]) for s in samples]),
           "flow": torch.stack([torch.from_numpy(np.ascontiguousarray(s["flow"].transpose(2, 0, 1))) for s in samples])}
    valid = [s.get("valid") if s.get("valid") is not None else np.isfinite(s["flow"]).all(2) for s in samples]
    out["valid"] = torch.stack([torch.from_numpy(np.ascontiguousarray(v)) for v in valid])
    out["flow"] = torch.nan_to_num(out["flow"], nan=0.0)
    return out


class TrainSource:
    """Draws sample ``index`` for training: the configured dataset, then the spec §6.4 augmentations."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self._datasets: dict = {}
        # natural-image textures for a share of the synthetic surfaces (read once per process)
        self._photos = load_photos() if config.uses_photos else None

    def dataset(self, crop: tuple[int, int], stage: Stage):
        photo_share = self.config.setting(stage, "photo_textures")
        large = large_motion(self.config, stage)
        key = (tuple(crop), photo_share, large["large_share"], tuple(large["large_range"]))
        if key not in self._datasets:
            if self.config.data == "synthetic":
                # render a margin beyond the crop so that zoom/rotation/translation keep the crop inside
                h, w = crop
                size = (int(h * 1.25) // 8 * 8, int(w * 1.25) // 8 * 8)
                self._datasets[key] = SyntheticFlow(size, seed=self.config.seed,
                                                    length=self.config.data_length or UNBOUNDED,
                                                    photos=self._photos if photo_share > 0 else None,
                                                    photo_share=photo_share, **large)
            else:
                from ..data.datasets import open_dataset

                self._datasets[key] = open_dataset(self.config.data, self.config.data_root, self.config.data_split)
        return self._datasets[key]

    def sample(self, index: int, crop: tuple[int, int], stage: Stage) -> dict:
        """Sample ``index`` cropped to ``crop``, with the data settings that apply in ``stage``."""
        ds = self.dataset(crop, stage)
        lo, hi = self.config.setting(stage, "motion_scale")
        scale = 1.0
        if self.config.data == "synthetic" and (lo, hi) != (1.0, 1.0):
            # the same scene (rendering depends on (seed, index) only) with its motions scaled
            scale = float(np.exp(np.random.default_rng([self.config.seed, 11, index]).uniform(np.log(lo), np.log(hi))))
            # (the large translations keep their lengths: they are the tail this scaling would cut)
            ds = SyntheticFlow(ds.size, seed=ds.seed, length=len(ds), max_motion=ds.max_motion * scale,
                               deformation=scale, photos=ds.photos, photo_share=ds.photo_share,
                               large_share=ds.large_share, large_range=ds.large_range)
        s = ds[index % len(ds)]
        share = self.config.setting(stage, "static_share")
        if share > 0:
            draw = np.random.default_rng([self.config.seed, 13, index])
            if draw.random() < share:  # a rigid sample (TrainConfig.static_share): frame 2 := frame 1, no motion yet
                h, w = s["img1"].shape[:2]
                s = {"img1": s["img1"], "img2": s["img1"].copy(), "flow": np.zeros((h, w, 2), np.float32),
                     "valid": np.ones((h, w), bool)}
                scale = float(np.exp(draw.uniform(*np.log(STATIC_RELATIVE))))
        rng = np.random.default_rng([self.config.seed, 7, index])
        if self.config.augment_strength == 0 and s["img1"].shape[:2] == tuple(crop):
            return s
        return augment_pair(s, rng, crop=tuple(crop), strength=self.config.augment_strength, relative=scale)


class BatchStream(torch.utils.data.IterableDataset):
    """Yields the batches of steps ``start_step, start_step + 1, ...`` for one rank; with DataLoader workers, worker
    ``k`` of ``n`` makes steps ``k, k + n, ...`` and the loader's round-robin order restores the sequence."""

    def __init__(self, config: TrainConfig, *, start_step: int = 0, rank: int = 0, world: int = 1) -> None:
        self.config, self.start, self.rank, self.world = config, start_step, rank, world

    def batch(self, step: int, source: Optional[TrainSource] = None) -> dict:
        source = source or TrainSource(self.config)
        _, stage, _ = self.config.stage_at(step)
        crop = tuple(stage.crop or self.config.crop)
        bsz = stage.batch or self.config.batch
        first = (step * self.world + self.rank) * bsz
        return collate([source.sample(first + j, crop, stage) for j in range(bsz)])

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        k, n = (info.id, info.num_workers) if info else (0, 1)
        source = TrainSource(self.config)
        step = self.start + k
        while True:
            yield self.batch(step, source)
            step += n


def large_motion(config: TrainConfig, stage: Stage) -> dict:
    """The stage's large-motion settings as :class:`SyntheticFlow` keywords."""
    return {"large_share": float(config.setting(stage, "large_motion_share")),
            "large_range": tuple(float(x) for x in config.setting(stage, "large_motion_range"))}


def validation_batches(config: TrainConfig, stage: Stage, batch: int = 8) -> list[dict]:
    """A fixed synthetic validation set (a seed no training run uses), un-augmented, at the stage's crop size, with
    the stage's large motions (so that a stage's stopping rule watches the motions it trains)."""
    ds = SyntheticFlow(tuple(stage.crop or config.crop), seed=config.seed + 1_000_003, length=config.validate_pairs,
                       **large_motion(config, stage))
    samples = [ds[i] for i in range(len(ds))]
    return [collate(samples[i:i + batch]) for i in range(0, len(samples), batch)]


def motion_histogram(config: TrainConfig, stage: Stage, samples: int, first: int = 0) -> tuple[np.ndarray, float]:
    """(share of valid pixels per band of :data:`flowcli.metrics.MAGNITUDE_BINS`, mean magnitude) of the true motion in
    ``samples`` training samples of ``stage``, drawn exactly as the trainer draws them (scene, augmentation, crop)."""
    from ..metrics import MAGNITUDE_BINS

    crop = tuple(stage.crop or config.crop)
    source = TrainSource(config)
    counts = np.zeros(len(MAGNITUDE_BINS) - 1)
    total, n = 0.0, 0
    for i in range(first, first + samples):
        s = source.sample(i, crop, stage)
        mag = np.hypot(s["flow"][..., 0], s["flow"][..., 1])[s["valid"]]
        counts += np.histogram(mag, bins=MAGNITUDE_BINS)[0]
        total, n = total + float(mag.sum()), n + mag.size
    return counts / max(n, 1), total / max(n, 1)
