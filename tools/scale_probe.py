"""How the error depends on the scale the network sees: the real pairs estimated at several ``--scale`` values.

Run ``python benchmarks/scale_probe.py [--weights W] [--root ../shared/data/real] [--scales 1,1.5,2,3]
[--groups middlebury,sintel_clean]``. For each scale s the estimator resizes both images by s (``Estimator(scale=s)``,
the ``--scale`` option of the commands) and returns the flow in the images' pixels. Prints, per group and scale, the
AEE in the images' pixels and the AEE times s, the error in the pixels the network saw. A flat second column means
the weights have a fixed precision floor in their own pixels (what the bundled weights show: about half a pixel at
every scale), so small motions gain from a larger scale and large ones lose; a falling one means they resolve small
motions finely already.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.api import Estimator  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import aee  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the bundled ones)")
    ap.add_argument("--root", default="../shared/data/real")
    ap.add_argument("--scales", default="1,1.5,2,3")
    ap.add_argument("--groups", default="middlebury,sintel_clean", help="groups of the folder set ('all' for every one)")
    args = ap.parse_args()
    if not Path(args.root).is_dir():
        sys.exit(f"error: {args.root}: no such folder of real pairs")
    groups = None if args.groups == "all" else set(args.groups.split(","))
    try:
        estimators = {s: Estimator(args.weights, device="cpu", scale=s)
                      for s in (float(v) for v in args.scales.split(","))}
    except ValueError as exc:
        sys.exit(f"error: --scales: {exc}")
    per: dict = {}
    for sample in open_dataset("folder", args.root):
        group = sample["sequence"]
        if groups is not None and group not in groups:
            continue
        for s, est in estimators.items():
            flow = est.estimate(sample["img1"], sample["img2"])
            per.setdefault((group, s), []).append(aee(flow, sample["flow"], sample.get("valid")))
    meta = next(iter(estimators.values())).checkpoint.meta
    print(f"weights: {meta.get('name')} (step {meta.get('train_step')})")
    print("| group | scale | AEE (image px) | AEE x scale (network px) |\n|---|---:|---:|---:|")
    for (group, s), vals in sorted(per.items()):
        print(f"| {group} | {s:g} | {np.mean(vals):.3f} | {np.mean(vals) * s:.3f} |")


if __name__ == "__main__":
    main()
