"""The distribution of true motion in a training recipe's samples, per band of magnitude, against a target.

    python benchmarks/motion_histogram.py weights/train_synthetic.toml --stage 6 --samples 48

Renders the samples a stage trains on (the synthetic scenes after the augmentation and crop, exactly as the trainer
draws them) and prints the share of pixels in each band of :data:`flowcli.metrics.MAGNITUDE_BINS` next to
:data:`flowcli.data.synthetic.LARGE_MOTION_TARGET`, the FlyingChairs-like shares the large-motion data aims at.
"""
from __future__ import annotations

import argparse
import time

from flowcli.data.synthetic import LARGE_MOTION_TARGET
from flowcli.metrics import magnitude_bin_labels
from flowcli.train import load_config
from flowcli.train.data import motion_histogram


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--stage", type=int, default=-1, help="stage index (default: the last)")
    p.add_argument("--samples", type=int, default=48)
    args = p.parse_args()
    cfg = load_config(args.config)
    index = args.stage % len(cfg.stages)
    t0 = time.perf_counter()
    shares, mean = motion_histogram(cfg, cfg.stages[index], args.samples)
    sec = (time.perf_counter() - t0) / args.samples
    print(f"stage {index} of {args.config}: {args.samples} samples, mean |flow| {mean:.1f} px, "
          f"{sec:.3f} s per sample")
    print(f"{'band (px)':>10} {'samples':>8} {'target':>8}")
    for label, share, target in zip(magnitude_bin_labels(), shares, LARGE_MOTION_TARGET):
        print(f"{label:>10} {share:8.3f} {target:8.3f}")


if __name__ == "__main__":
    main()
