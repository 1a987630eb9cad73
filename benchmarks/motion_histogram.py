"""The distribution of true motion in a training recipe's samples, per band of magnitude, against a target.

    python benchmarks/motion_histogram.py weights/train_synthetic.toml --stage 6 --samples 48

Renders the samples a stage trains on (the synthetic scenes after the augmentation and crop, exactly as the trainer
draws them) and prints the share of pixels in each band of :data:`flowcli.metrics.MAGNITUDE_BINS` next to
:data:`flowcli.data.synthetic.LARGE_MOTION_TARGET`, the FlyingChairs-like shares the large-motion data aims at.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from flowcli.data.synthetic import LARGE_MOTION_TARGET
from flowcli.metrics import MAGNITUDE_BINS, magnitude_bin_labels
from flowcli.train import load_config
from flowcli.train.data import TrainSource


def stage_histogram(config, stage_index: int, samples: int, first: int = 0) -> tuple[np.ndarray, float, float]:
    """(share of pixels per band, mean magnitude, seconds per sample) over ``samples`` training samples."""
    stage = config.stages[stage_index]
    crop = tuple(stage.crop or config.crop)
    source = TrainSource(config)
    counts = np.zeros(len(MAGNITUDE_BINS) - 1)
    total, n = 0.0, 0
    t0 = time.perf_counter()
    for i in range(first, first + samples):
        s = source.sample(i, crop, stage)
        mag = np.hypot(s["flow"][..., 0], s["flow"][..., 1])[s["valid"]]
        counts += np.histogram(mag, bins=MAGNITUDE_BINS)[0]
        total, n = total + float(mag.sum()), n + mag.size
    return counts / max(n, 1), total / max(n, 1), (time.perf_counter() - t0) / samples


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--stage", type=int, default=-1, help="stage index (default: the last)")
    p.add_argument("--samples", type=int, default=48)
    args = p.parse_args()
    cfg = load_config(args.config)
    index = args.stage % len(cfg.stages)
    shares, mean, sec = stage_histogram(cfg, index, args.samples)
    print(f"stage {index} of {args.config}: {args.samples} samples, mean |flow| {mean:.1f} px, "
          f"{sec:.3f} s per sample")
    print(f"{'band (px)':>10} {'samples':>8} {'target':>8}")
    for label, share, target in zip(magnitude_bin_labels(), shares, LARGE_MOTION_TARGET):
        print(f"{label:>10} {share:8.3f} {target:8.3f}")


if __name__ == "__main__":
    main()
