"""Time the built-in synthetic dataset (and its augmentation) on this machine's CPU.

Run ``python benchmarks/bench_synthetic.py [--pairs N] [--threads T] [--config TOML]``; prints milliseconds per
pair for 448x320 and 256x192 rendering (noise textures, and half of them cut from photographs where scikit-image
is installed), for augmenting a 512x384 pair to a 448x320 crop, and per training batch as the trainer's data
worker makes them with the settings of ``--config`` (default: the bundled weights' recipe).
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
from flowcli.data.photos import load_photos, photo_dir  # noqa: E402
from flowcli.data.synthetic import SyntheticFlow  # noqa: E402
from flowcli.train.config import load_config  # noqa: E402
from flowcli.train.data import BatchStream  # noqa: E402


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
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "weights" / "train_synthetic.toml"))
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    photos = load_photos() if photo_dir() is not None else None
    for h, w in ((320, 448), (192, 256)):
        for label, kw in (("noise textures", {}), ("half photo textures", {"photos": photos, "photo_share": 0.5})):
            if label.startswith("half") and photos is None:
                continue
            ds = SyntheticFlow((h, w), seed=0, **kw)
            print(f"synthetic {w}x{h}, {label}: {_ms_per_item(lambda i: ds[i], args.pairs):.1f} ms/pair")
    big = SyntheticFlow((384, 512), seed=1)
    samples = [big[i] for i in range(4)]
    rng = np.random.default_rng(0)
    ms = _ms_per_item(lambda i: augment_pair(samples[i % 4], rng, (320, 448)), args.pairs)
    print(f"augment_pair 512x384 -> 448x320: {ms:.1f} ms/pair")
    config = load_config(args.config)
    stream = BatchStream(config)
    batches = max(2, args.pairs // config.batch)
    ms = _ms_per_item(lambda i: stream.batch(i), batches)
    print(f"training batch ({Path(args.config).name}: {config.batch} x {config.crop[1]}x{config.crop[0]}, "
          f"photo_textures {config.photo_textures}): {ms:.0f} ms/batch")


if __name__ == "__main__":
    main()
