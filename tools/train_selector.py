"""Train the learned candidate selector (:mod:`flowcli.postprocess.selection`) on the project's own synthetic pairs.

    python tools/train_selector.py --out selector.json [--weights W] [--pairs 240] [--hidden 16] [--smooth 9]

Renders synthetic pairs (flowcli.data.synthetic, photographic textures, motions from sub-pixel to ~160 px, some
frames blurred, noisy or with another exposure), computes for each the candidate flows of a random subset (two or
more) of :data:`CANDIDATES`, or of ``--candidates``, with the given weights, and fits the selector's scorer to
minimise the expected ``log(1 + EPE)`` of its pick over sampled pixels (a softmax over the candidates). No real pair is used: those measure
the result (``tools/selection_report.py``). Writes the selector as JSON (``Selector.to_dict``), which a recipe takes as
its ``selection``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from flowcli.api import Estimator
from flowcli.data.photos import load_photos
from flowcli.data.synthetic import SyntheticFlow
from flowcli.postprocess.selection import FEATURES, KINDS, Selector, selection_features
from flowcli.recipe import Recipe
from flowcli.runtime import native_bf16

CANDIDATES = ("net@1", "net@0.25", "cascade@0.25", "dis", "deepflow")
SEED = 7_000_001  # no training run of the network uses it


def motion_blur(img: np.ndarray, flow: np.ndarray, exposure: float, taps: int = 9) -> np.ndarray:
    """``img`` blurred along ``flow`` as a shutter open for ``exposure`` of the time between the frames sees it: the
    mean of the image sampled along each pixel's motion, centred on it (Sintel's final pass renders this)."""
    import cv2

    h, w = img.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    out = np.zeros_like(img, dtype=np.float32)
    for t in (np.linspace(-0.5, 0.5, taps) * exposure).astype(np.float32):
        out += cv2.remap(img, xs + t * flow[..., 0], ys + t * flow[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out / taps


def degrade(sample: dict, rng: np.random.Generator, motion_share: float = 0.0) -> dict:
    """Real footage is not clean: some pairs get motion blur along their flow (``motion_share`` of them; frame 2 is
    blurred along frame 1's flow, the same where layers are large), lens-like blur, sensor noise or a change of exposure
    in frame 2."""
    import cv2

    a, b = sample["img1"].astype(np.float32), sample["img2"].astype(np.float32)
    if motion_share and rng.random() < motion_share:
        exposure = float(rng.uniform(0.2, 0.7))
        flow = np.nan_to_num(sample["flow"]).astype(np.float32)
        a, b = motion_blur(a, flow, exposure), motion_blur(b, flow, exposure)
    if rng.random() < 0.3:
        k = int(rng.choice([3, 5, 7]))
        a, b = cv2.GaussianBlur(a, (k, k), 0), cv2.GaussianBlur(b, (k, k), 0)
    if rng.random() < 0.3:
        b = 255.0 * (b / 255.0) ** rng.uniform(0.7, 1.4) * rng.uniform(0.8, 1.2)
    if rng.random() < 0.3:
        sigma = rng.uniform(1, 6)
        a, b = a + rng.normal(0, sigma, a.shape), b + rng.normal(0, sigma, b.shape)
    out = dict(sample)
    out["img1"], out["img2"] = (np.clip(x, 0, 255).astype(np.uint8) for x in (a, b))
    return out


def pool_estimator(weights: str | None, pool: list[str]) -> Estimator:
    """The estimator :func:`pair_data` draws candidates from: built with the whole pool as its recipe, so that every
    weight set the pool names (``net@S:NAME``) has its network, in the precision the recipes run in here (bf16 where
    the CPU computes it natively)."""
    return Estimator(weights, device="cpu", recipe=Recipe(candidates=tuple(pool)),
                     precision="bf16" if native_bf16("cpu") else "fp32")


def pair_data(est: Estimator, sample: dict, specs: list[str], rng: np.random.Generator, per_pair: int):
    """(features N x K x F, log1p EPE N x K) for ``per_pair`` pixels of one pair and the candidate subset ``specs``."""
    recipe = Recipe(candidates=tuple(specs))
    est.recipe = recipe
    a, b = sample["img1"], sample["img2"]
    flows = recipe.all_candidates(a, b, est.candidates([a], [b])[0])
    feats = selection_features(a, b, flows, [c.selector_kind for c in recipe.parsed])
    gt = sample["flow"]
    epe = np.stack([np.hypot(*(f - gt).transpose(2, 0, 1)) for f in flows])
    valid = sample["valid"].ravel()
    # pixels where the pick matters count most: sample them more often (the loss is unweighted)
    spread = (epe.max(0) - epe.min(0)).ravel()
    p = (0.1 + np.minimum(spread, 10.0)) * valid
    idx = rng.choice(p.size, size=per_pair, replace=True, p=p / p.sum())
    k, f = feats.shape[:2]
    x = feats.reshape(k, f, -1)[:, :, idx].transpose(2, 0, 1)
    y = np.log1p(epe.reshape(k, -1)[:, idx]).T
    return x.astype(np.float32), y.astype(np.float32)


def fit(data: list, hidden: int, epochs: int, seed: int) -> dict:
    """Adam on the expected log(1 + EPE) of the softmax pick; data: (x N x K x F, y N x K) of varying K."""
    torch.manual_seed(seed)
    allx = np.concatenate([x.reshape(-1, x.shape[-1]) for x, _ in data])
    mean = allx.mean(0)
    std = allx.std(0) + 1e-3
    net = torch.nn.Sequential(torch.nn.Linear(allx.shape[1], hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    groups = [(torch.from_numpy((x - mean) / std), torch.from_numpy(y)) for x, y in data]
    for epoch in range(epochs):
        total = 0.0
        for i in np.random.default_rng(seed + epoch).permutation(len(groups)):
            x, y = groups[i]
            s = net(x).squeeze(-1)
            loss = (torch.softmax(s, dim=1) * y).sum(1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: expected log(1+EPE) {total / len(groups):.4f}", flush=True)
    w1, b1 = net[0].weight.detach().numpy().T, net[0].bias.detach().numpy()
    w2, b2 = net[2].weight.detach().numpy()[0], float(net[2].bias.detach().numpy()[0])
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2, "mean": mean, "std": std}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--weights", default=None)
    p.add_argument("--pairs", type=int, default=240)
    p.add_argument("--per-pair", type=int, default=6000)
    p.add_argument("--hidden", type=int, default=16)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--smooth", type=int, default=9)
    p.add_argument("--size", default="384x512")
    p.add_argument("--cache", default=None, help="keep the sampled pixels here (an .npz) and reuse them")
    p.add_argument("--motion-blur", type=float, default=0.0, metavar="SHARE",
                   help="share of the pairs blurred along their motion (default 0)")
    p.add_argument("--candidates", default=",".join(CANDIDATES),
                   help="the pool each pair draws two or more candidates from (comma-separated specs)")
    args = p.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    pool = [c.strip() for c in args.candidates.split(",") if c.strip()]
    cache = Path(args.cache) if args.cache else None
    if cache and cache.exists():
        z = np.load(cache, allow_pickle=False)
        data = [(z[f"x{i}"], z[f"y{i}"]) for i in range(int(z["n"]))]
    else:
        est = pool_estimator(args.weights, pool)
        photos = load_photos()
        rng = np.random.default_rng(SEED)
        data, t0 = [], time.time()
        for i in range(args.pairs):
            large = float(rng.choice([0.0, 0.0, 0.2, 0.4]))
            ds = SyntheticFlow((h, w), seed=SEED + i, length=1, photos=photos, photo_share=0.8,
                               max_motion=float(np.exp(rng.uniform(np.log(1.5), np.log(40)))),
                               large_share=large, large_range=(20.0, 160.0))
            sample = degrade(ds[0], rng, args.motion_blur)
            n = int(rng.integers(2, len(pool) + 1))
            specs = [pool[j] for j in sorted(rng.choice(len(pool), size=n, replace=False))]
            data.append(pair_data(est, sample, specs, rng, args.per_pair))
            if (i + 1) % 20 == 0:
                print(f"{i + 1} pairs, {time.time() - t0:.0f} s", flush=True)
        if cache:
            np.savez(cache, n=len(data), **{f"x{i}": x for i, (x, _) in enumerate(data)},
                     **{f"y{i}": y for i, (_, y) in enumerate(data)})
    params = fit(data, args.hidden, args.epochs, seed=0)
    selector = Selector(**params, smooth=args.smooth)
    Path(args.out).write_text(json.dumps(selector.to_dict()))
    print(f"selector ({len(FEATURES) + len(KINDS)} features, {args.hidden} hidden units) written to {args.out}")


if __name__ == "__main__":
    main()
