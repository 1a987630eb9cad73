"""Time the built-in synthetic dataset (and its augmentation) on this machine's CPU.

Run ``python benchmarks/bench_synthetic.py [--pairs N] [--threads T]``; prints milliseconds per
pair for 448x320 and 256x192 rendering, and for augmenting a 512x384 pair to a 448x320 crop.
OpenCV's own thread pool is limited with ``--threads`` (default 1, as in a data-loader worker).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.data.augment import augment_pair  # noqa: E402
from flowcli.data.synthetic import SyntheticFlow  # noqa: E402


def _ms_per_item(fn, n: int) -> float:
    fn(0)  # warm-up: first calls pay for imports and allocations
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return (time.perf_counter() - t) / n * 1000.0


def main() -> None:
    """Parse the options, time each case and print one line per case."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=40, help="pairs per case (default 40)")
    ap.add_argument("--threads", type=int, default=1, help="cv2.setNumThreads (default 1)")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    for h, w in ((320, 448), (192, 256)):
        ds = SyntheticFlow((h, w), seed=0)
        print(f"synthetic {w}x{h}: {_ms_per_item(lambda i: ds[i], args.pairs):.1f} ms/pair")
    big = SyntheticFlow((384, 512), seed=1)
    samples = [big[i] for i in range(4)]
    rng = np.random.default_rng(0)
    ms = _ms_per_item(lambda i: augment_pair(samples[i % 4], rng, (320, 448)), args.pairs)
    print(f"augment_pair 512x384 -> 448x320: {ms:.1f} ms/pair")


if __name__ == "__main__":
    main()
