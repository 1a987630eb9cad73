"""Translation sweep: how far the estimator follows a known motion, without any ground-truth dataset.

    python benchmarks/translation_sweep.py [--weights W] [--recipe fast|default|quality|plain] [--max 200]

Real frames (the first frames of ../shared/data/real's Sintel, KITTI and Middlebury pairs when that folder is there,
else the bundled example) are moved by translations (dx, dx/3) of growing length, alone and combined with a small
rotation and zoom (1 degree, 2 %), rendered exactly with OpenCV (bilinear, reflected borders). Prints the interior AEE
(pixels whose motion stays 16 px inside the frame) per motion length and frame: where the estimator's range ends, the
error jumps from a fraction of a pixel to tens of pixels. A dozen pairs at 512x384: seconds on a CPU per recipe.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.api import Estimator  # noqa: E402
from flowcli.io import read_image  # noqa: E402

REAL = ROOT.parent / "shared" / "data" / "real"
FRAMES = ("sintel_clean_alley_1_0001", "kitti15_000000", "middlebury_RubberWhale")
LENGTHS = (2, 5, 10, 20, 30, 45, 60, 90, 120, 150, 200)
MARGIN = 16


def frames(size: tuple[int, int]) -> dict[str, np.ndarray]:
    """name -> an HxW crop (resized to cover ``size`` first) of each real frame, or of the bundled example."""
    paths = {n: next((REAL / n).glob("img1.*")) for n in FRAMES if (REAL / n).is_dir()}
    if not paths:
        paths = {"example": ROOT / "examples" / "frame_0001.png"}
    out = {}
    h, w = size
    for name, path in paths.items():
        img = read_image(path)
        k = max(h / img.shape[0], w / img.shape[1], 1.0)
        if k > 1:
            img = cv2.resize(img, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
        y, x = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        out[name] = np.ascontiguousarray(img[y:y + h, x:x + w])
    return out


def moved(image: np.ndarray, dx: float, dy: float, angle_deg: float = 0.0, zoom: float = 1.0):
    """(img1, img2, flow, interior): img2 is img1 under the affine motion p -> A p (rotation and zoom about the centre,
    then the translation), so the true flow is A p - p; interior marks pixels moving to at least MARGIN px inside."""
    h, w = image.shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    a = math.radians(angle_deg)
    lin = zoom * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    m = np.eye(3)
    m[:2, :2], m[:2, 2] = lin, c - lin @ c + np.array([dx, dy])
    # img2(q) = img1(A^-1 q): warpAffine with the inverse map
    img2 = cv2.warpAffine(image, np.linalg.inv(m)[:2], (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT_101)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    tx = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    ty = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    flow = np.stack([tx - xs, ty - ys], axis=-1).astype(np.float32)
    inside = lambda u, n: (u >= MARGIN) & (u <= n - 1 - MARGIN)  # noqa: E731
    interior = inside(tx, w) & inside(ty, h) & inside(xs, w) & inside(ys, h)
    return image, img2, flow, interior


def sweep(est, images: dict, lengths=LENGTHS, affine: bool = True) -> dict:
    """{(frame, kind, length): interior AEE} for translations (dx, dx/3) of each length, and with rotation+zoom."""
    out = {}
    kinds = [("shift", 0.0, 1.0)] + ([("affine", 1.0, 1.02)] if affine else [])
    for name, image in images.items():
        for kind, angle, zoom in kinds:
            for length in lengths:
                dx = length / math.hypot(1, 1 / 3)
                img1, img2, flow, interior = moved(image, dx, dx / 3, angle, zoom)
                pred = est.estimate(img1, img2)
                err = np.sqrt(((pred - flow) ** 2).sum(-1))[interior]
                out[(name, kind, length)] = float(err.mean()) if err.size else float("nan")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default=None, help="checkpoint (default: the bundled weights)")
    p.add_argument("--recipe", default="default", choices=["fast", "default", "quality", "plain"])
    p.add_argument("--size", default="512x384", help="WIDTHxHEIGHT of the crops")
    p.add_argument("--max", type=float, default=200, help="longest motion")
    p.add_argument("--no-affine", action="store_true", help="translations only")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    est = Estimator(args.weights, device="cpu", recipe=args.recipe)
    lengths = [n for n in LENGTHS if n <= args.max]
    t0 = time.perf_counter()
    res = sweep(est, frames((h, w)), lengths, affine=not args.no_affine)
    names = sorted({(f, k) for f, k, _ in res})
    print(f"interior AEE (px), {est.checkpoint.name}, recipe {est.recipe.describe()}, {w}x{h}, "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'frame':28s}" + "".join(f"{n:>7g}" for n in lengths))
    for f, k in names:
        print(f"{f[:20] + ' ' + k:28s}" + "".join(f"{res[(f, k, n)]:7.2f}" for n in lengths))
    worst = {n: max(res[(f, k, n)] for f, k in names) for n in lengths}
    print(f"{'worst':28s}" + "".join(f"{worst[n]:7.2f}" for n in lengths))


if __name__ == "__main__":
    main()
