"""How the error depends on the scale the network sees: the real pairs estimated at several input scales.

Run ``python benchmarks/scale_probe.py [--weights W] [--root ../shared/data/real] [--scales 1,1.5,2,3]
[--groups middlebury,sintel_clean]``. For each scale s both images are resized by s (bicubic up, area down), the flow
is estimated, resized back and divided by s. Prints, per group and scale, the AEE in the images' pixels and the AEE
times s, the error in the pixels the network saw. A flat second column means the weights have a fixed precision
floor in their own pixels (what the bundled weights showed: about 0.5 px at every scale), so small motions suffer
most; a falling one means they resolve small motions finely. A diagnostic of training progress, not a mode of
flowcli: estimation always runs at scale 1, as the original network does.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.api import Estimator  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import aee  # noqa: E402


def estimate_at(est: Estimator, img1: np.ndarray, img2: np.ndarray, scale: float) -> np.ndarray:
    """Flow of the pair estimated with both images resized by ``scale``, in the original images' pixels."""
    if scale == 1.0:
        return est.estimate(img1, img2)
    h, w = img1.shape[:2]
    interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
    a, b = (cv2.resize(im, None, fx=scale, fy=scale, interpolation=interp) for im in (img1, img2))
    flow = est.estimate(a, b)
    return cv2.resize(flow, (w, h), interpolation=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR) / scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the bundled ones)")
    ap.add_argument("--root", default="../shared/data/real")
    ap.add_argument("--scales", default="1,1.5,2,3")
    ap.add_argument("--groups", default="middlebury,sintel_clean", help="groups of the folder set ('all' for every one)")
    args = ap.parse_args()
    if not Path(args.root).is_dir():
        sys.exit(f"error: {args.root}: no such folder of real pairs")
    scales = [float(s) for s in args.scales.split(",")]
    groups = None if args.groups == "all" else set(args.groups.split(","))
    est = Estimator(args.weights, device="cpu")
    per: dict = {}
    for sample in open_dataset("folder", args.root):
        group = sample["sequence"]
        if groups is not None and group not in groups:
            continue
        for s in scales:
            flow = estimate_at(est, sample["img1"], sample["img2"], s)
            per.setdefault((group, s), []).append(aee(flow, sample["flow"], sample.get("valid")))
    print(f"weights: {est.checkpoint.meta.get('name')} (step {est.checkpoint.meta.get('train_step')})")
    print("| group | scale | AEE (image px) | AEE x scale (network px) |\n|---|---:|---:|---:|")
    for (group, s), vals in sorted(per.items()):
        print(f"| {group} | {s:g} | {np.mean(vals):.3f} | {np.mean(vals) * s:.3f} |")


if __name__ == "__main__":
    main()
