"""Time and sanity-check the model-free post-processing stages (flowcli.postprocess) on this machine's CPU.

    python benchmarks/bench_postprocess.py [--repeats 5] [--threads 1] [--variants]

Timings, at 1024x436 (the Sintel alley_1 pair of ../shared/data/real if present, else random images):
the census transform of both frames, the fusion of 3 candidate flows, the variational refinement with
its defaults; median of ``--repeats`` runs, OpenCV limited to ``--threads`` threads (default 1).

Then, for each pair folder of ../shared/data/real (if present), the average end-point error of OpenCV
DIS (medium preset, on grayscale) before and after ``variational_refine``, and of the fusion of the
candidates [DIS, DIS on half-size frames upsampled]. ``--variants`` adds fusion settings other than the
defaults (census pattern, aggregation box, vote). ../shared/data/val is never read (held out).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.io import read_flow, read_image  # noqa: E402
from flowcli.postprocess import census_transform, fuse_candidates, variational_refine  # noqa: E402
from flowcli.postprocess.fusion import _as_gray  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
SIZE = (436, 1024)  # (H, W)


def gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def dis(img1: np.ndarray, img2: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """DIS medium flow; at ``scale`` < 1 computed on downscaled frames and upsampled (vectors too)."""
    h, w = img1.shape[:2]
    g1, g2 = gray(img1), gray(img2)
    if scale != 1.0:
        size = (round(w * scale), round(h * scale))
        g1 = cv2.resize(g1, size, interpolation=cv2.INTER_AREA)
        g2 = cv2.resize(g2, size, interpolation=cv2.INTER_AREA)
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(g1, g2, None)
    if scale != 1.0:
        sx, sy = w / flow.shape[1], h / flow.shape[0]
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
        flow[:, :, 0] *= sx
        flow[:, :, 1] *= sy
    return flow


def aee(flow: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> float:
    return float(np.linalg.norm(flow - gt, axis=2)[valid].mean())


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def load_pair(folder: Path):
    ext = "png" if (folder / "img1.png").exists() else "ppm"
    img1, img2 = read_image(folder / f"img1.{ext}"), read_image(folder / f"img2.{ext}")
    gt_path = folder / "gt.flo" if (folder / "gt.flo").exists() else folder / "gt_flow_kitti.png"
    gt, valid = read_flow(gt_path)
    return img1, img2, gt, valid


def timings(repeats: int) -> None:
    sintel = REAL / "sintel_final_alley_1_0001"
    if (sintel / "img1.png").exists():
        img1, img2 = read_image(sintel / "img1.png"), read_image(sintel / "img2.png")
        source = str(sintel.relative_to(ROOT.parent))
        candidates = [dis(img1, img2), dis(img1, img2, 0.5), dis(img1, img2, 0.25)]
    else:
        rng = np.random.default_rng(0)
        img1 = cv2.GaussianBlur(rng.integers(0, 256, SIZE + (3,), dtype=np.uint8), (0, 0), 1.0)
        img2 = np.roll(img1, (1, 3), axis=(0, 1))
        source = "random images"
        candidates = [np.float32(rng.normal(0, 2, SIZE + (2,))) for _ in range(3)]
    h, w = img1.shape[:2]
    print(f"timings at {w}x{h} ({source}), OpenCV threads {cv2.getNumThreads()}, median of {repeats}:")
    g1, g2 = _as_gray(img1, "img1"), _as_gray(img2, "img2")
    rows = [
        ("census_transform, both frames (9x9/2)", lambda: (census_transform(g1), census_transform(g2))),
        ("census_transform, both frames (7x7)",
         lambda: (census_transform(g1, window=7, stride=1), census_transform(g2, window=7, stride=1))),
        ("fuse_candidates, 3 candidates (defaults)", lambda: fuse_candidates(img1, img2, candidates)),
        ("variational_refine (defaults)", lambda: variational_refine(img1, img2, candidates[0])),
        ("variational_refine, octaves=1, 5 fixed-point its",
         lambda: variational_refine(img1, img2, candidates[0], octaves=1, fixed_point_iterations=5)),
        ("(for scale) DIS medium", lambda: dis(img1, img2)),
    ]
    for name, fn in rows:
        print(f"  {name:<50s} {1000 * timed(fn, repeats):8.1f} ms")


def accuracy(variants: bool) -> None:
    folders = sorted(p for p in REAL.iterdir() if p.is_dir()) if REAL.is_dir() else []
    if not folders:
        print(f"no pairs in {REAL}: accuracy skipped")
        return
    configs = {"fused": {}}
    if variants:
        configs.update({
            "7x7 full": {"window": 7, "stride": 1},
            "agg 5": {"aggregate": 5},
            "agg 21": {"aggregate": 21},
            "no vote": {"vote": 0},
        })
    head = ["DIS", "DIS+refine", "DIS/2", "DIS/2+refine", *configs, "fused+refine"]
    print(f"\nAEE (px) on {REAL.relative_to(ROOT.parent)}; fusion candidates [DIS, DIS/2 upsampled]:")
    print(f"  {'pair':<28s}" + "".join(f"{h:>14s}" for h in head))
    table = []
    for folder in folders:
        img1, img2, gt, valid = load_pair(folder)
        full, half = dis(img1, img2), dis(img1, img2, 0.5)
        row = [aee(full, gt, valid), aee(variational_refine(img1, img2, full), gt, valid),
               aee(half, gt, valid), aee(variational_refine(img1, img2, half), gt, valid)]
        fused = None
        for name, kw in configs.items():
            flow, _ = fuse_candidates(img1, img2, [full, half], **kw)
            row.append(aee(flow, gt, valid))
            if name == "fused":
                fused = flow
        row.append(aee(variational_refine(img1, img2, fused), gt, valid))
        table.append(row)
        print(f"  {folder.name:<28s}" + "".join(f"{x:14.3f}" for x in row))
    means = np.mean(table, axis=0)
    print(f"  {'mean':<28s}" + "".join(f"{x:14.3f}" for x in means))
    ratios = np.exp(np.mean(np.log(np.array(table) / np.array(table)[:, :1]), axis=0))
    print(f"  {'geo. mean ratio to DIS':<28s}" + "".join(f"{x:14.3f}" for x in ratios))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1)")
    ap.add_argument("--variants", action="store_true", help="also fusion settings other than the defaults")
    ap.add_argument("--no-accuracy", action="store_true", help="timings only")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    timings(args.repeats)
    if not args.no_accuracy:
        accuracy(args.variants)


if __name__ == "__main__":
    main()
