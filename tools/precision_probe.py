"""The precision floor without ground truth: flow on identical frames and on known sub-pixel shifts of real photos.

Run ``python benchmarks/precision_probe.py [--weights W | --baseline dis] [--root ../shared/data/real]
[--shifts 0:0,0.5:0,1.3:-0.7] [--symmetric]``. For the first frame of each group's first pair, frame 2 is the same photo translated by each shift
(u:v px; bicubic, mirrored border), so the true flow is that constant everywhere, with no occlusion, no deformation
and no lighting change: what is left is the estimator's own error. Prints, per group and shift, the AEE on the
interior (a 32 px margin left out) and the mean estimate. A shift of 0:0 (identical frames) measures how much motion
the weights invent where there is none.

``--symmetric`` also prints two test-time combinations (2x and 4x the network passes): ``fb``, the forward estimate
averaged with the negated backward one sampled at the forward target (where the two agree to within 1 px), and
``flip4``, the mean of the estimates on the pair mirrored left-right, up-down and both, mapped back. They tell how
much of the error is a pattern the weights attach to the image content (it cancels) rather than a bias (it stays).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.api import Estimator  # noqa: E402
from flowcli.baselines import baseline_flow  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import epe  # noqa: E402
from flowcli.viz.warping import warp_image  # noqa: E402

MARGIN = 32


def shifted(image: np.ndarray, u: float, v: float) -> np.ndarray:
    """``image`` moved by (u, v) px: frame 2 of a pair whose flow is (u, v) everywhere."""
    h, w = image.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, xs - u, ys - v, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)


def forward_backward(est: Estimator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Forward flow averaged with the negated backward flow at the forward target, where they agree within 1 px."""
    f, b_flow = est.estimate_batch([(a, b), (b, a)])
    b_at, inside = warp_image(b_flow, f)
    agree = inside & (np.linalg.norm(f + b_at, axis=2) < 1.0)
    return np.where(agree[..., None], (f - b_at) / 2, f)


def flip_average(est: Estimator, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean of the estimates on the pair as it is and mirrored along x, y and both, each mapped back."""
    total = np.zeros(a.shape[:2] + (2,), np.float32)
    for axes in ((), (1,), (0,), (0, 1)):
        pair = [np.ascontiguousarray(np.flip(x, axes)) if axes else x for x in (a, b)]
        f = est.estimate(*pair)
        for ax in axes:  # mirroring columns (axis 1) negates u, rows (axis 0) negates v
            f = np.flip(f, ax)
            f[..., 1 - ax] = -f[..., 1 - ax]
        total += f
    return total / 4


def parse_shifts(text: str) -> list[tuple[float, float]]:
    try:
        return [(float(u), float(v)) for u, v in (item.split(":") for item in text.split(","))]
    except ValueError:
        sys.exit(f"error: --shifts: expected u:v pairs separated by commas, got {text!r}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the bundled ones)")
    ap.add_argument("--root", default="../shared/data/real")
    ap.add_argument("--shifts", default="0:0,0.5:0,1.3:-0.7,3.25:2")
    ap.add_argument("--groups", default="middlebury,sintel_clean,chairs,kitti15")
    ap.add_argument("--baseline", default=None, help="measure this OpenCV method (dis, deepflow, ...) instead")
    ap.add_argument("--symmetric", action="store_true", help="also the fb and flip4 combinations")
    args = ap.parse_args()
    if not Path(args.root).is_dir():
        sys.exit(f"error: {args.root}: no such folder of real pairs")
    shifts = parse_shifts(args.shifts)
    if args.baseline:
        methods = {args.baseline: lambda a, b: baseline_flow(args.baseline, a, b)}
    else:
        est = Estimator(args.weights, device="cpu")
        methods = {"forward": lambda a, b: est.estimate(a, b)}
        if args.symmetric:
            methods.update(fb=lambda a, b: forward_backward(est, a, b), flip4=lambda a, b: flip_average(est, a, b))
        meta = est.checkpoint.meta
        print(f"weights: {meta.get('name')} (step {meta.get('train_step')})")
    print("| group | shift u:v | method | AEE | mean estimate |\n|---|---|---|---:|---|")
    wanted, seen = set(args.groups.split(",")), set()
    inner = (slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    for sample in open_dataset("folder", args.root):
        group = sample["sequence"]
        if group not in wanted or group in seen:
            continue
        seen.add(group)
        frame = sample["img1"]
        for u, v in shifts:
            moved = shifted(frame, u, v)  # at 0:0 an exact copy (bicubic weights at whole pixels are 1 and 0)
            truth = np.broadcast_to(np.array([u, v], np.float32), frame.shape[:2] + (2,))
            for name, method in methods.items():
                flow = method(frame, moved)
                mean = flow[inner].reshape(-1, 2).mean(0)
                print(f"| {group} | {u:g}:{v:g} | {name} | {epe(flow, truth)[inner].mean():.3f} | "
                      f"{mean[0]:+.3f}, {mean[1]:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
