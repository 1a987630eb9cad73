"""Where the error lies: AEE by distance to the nearest motion boundary of the ground truth, per real pair.

Run ``python benchmarks/error_bands.py [--weights FILE | --baseline dis] [--groups middlebury,sintel_clean] [--root ...]``.
A pixel is on a motion boundary where the ground-truth flow changes by more than ``--edge`` px (default 0.5) to a
neighbour (central differences). For each band of distance (0-5, 5-20, 20+ px) prints the share of valid pixels, their
AEE and their share of the pair's summed error: a smeared field at the boundaries shows up in the first two bands, a
precision floor in the last one.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.api import estimate_flow  # noqa: E402
from flowcli.baselines import baseline_flow  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import epe  # noqa: E402

BANDS = ((0.0, 5.0), (5.0, 20.0), (20.0, np.inf))


def boundary_distance(flow: np.ndarray, edge: float) -> np.ndarray:
    """Per pixel, the distance (px) to the nearest pixel where the flow changes by more than ``edge`` px."""
    step = np.maximum(np.linalg.norm(np.gradient(flow, axis=1), axis=2), np.linalg.norm(np.gradient(flow, axis=0), axis=2))
    off_boundary = (step <= edge).astype(np.uint8)
    return cv2.distanceTransform(off_boundary, cv2.DIST_L2, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the bundled ones)")
    ap.add_argument("--baseline", default=None, help="measure this OpenCV method (dis, deepflow, ...) instead")
    ap.add_argument("--root", default="../shared/data/real")
    ap.add_argument("--groups", default="middlebury,sintel_clean,sintel_final")
    ap.add_argument("--edge", type=float, default=0.5)
    args = ap.parse_args()
    if not Path(args.root).is_dir():
        sys.exit(f"{args.root}: no such folder of real pairs (--root)")
    groups = set(args.groups.split(","))
    for s in open_dataset("folder", args.root):
        if s["sequence"] not in groups:
            continue
        gt = s["flow"]
        flow = (baseline_flow(args.baseline, s["img1"], s["img2"]) if args.baseline
                else estimate_flow(s["img1"], s["img2"], weights=args.weights))
        err = epe(flow, gt)
        valid = np.ones(err.shape, bool) if s.get("valid") is None else s["valid"].astype(bool)
        dist = boundary_distance(gt, args.edge)
        cells = []
        for lo, hi in BANDS:
            m = (dist >= lo) & (dist < hi) & valid
            name = f"{lo:g}-{hi:g} px" if np.isfinite(hi) else f"{lo:g}+ px"
            cells.append(f"{name}: {m.sum() / valid.sum():.0%} of pixels, AEE {err[m].mean():.3f}, "
                         f"{err[m].sum() / err[valid].sum():.0%} of the error")
        print(f"{s['sequence']} {s.get('name', '')}: AEE {err[valid].mean():.3f}; " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
