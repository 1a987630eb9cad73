"""Compare inference-recipe variants on a folder of real pairs with ground truth (the tuning set, never the held-out
one): the network's candidates are computed once per pair and scale and cached, then each variant's fusion and
refinement run on them.

    python tools/tune_recipe.py ../shared/data/real [--weights W] [--cache /tmp/cands]

Prints, per variant, the AEE per group, the bar (largest AEE / DIS-medium AEE over groups) and the post-processing
seconds per pair.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from flowcli.api import Estimator
from flowcli.baselines import baseline_flow
from flowcli.data.datasets import open_dataset
from flowcli.metrics import aee
from flowcli.recipe import Recipe

VARIANTS = {
    "plain": Recipe(),
    "refine": Recipe(refine={}),
    "1+.5 refine": Recipe(scales=(1, .5), refine={}),
    "1+.5+.25 refine": Recipe(scales=(1, .5, .25), refine={}),
    "1+.5+.25": Recipe(scales=(1, .5, .25)),
    "1+.25 refine": Recipe(scales=(1, .25), refine={}),
    "1+.5+.25 refine fp10": Recipe(scales=(1, .5, .25), refine={"fixed_point_iterations": 10}),
    "1+.5+.25 refine oct2 fp10": Recipe(scales=(1, .5, .25), refine={"octaves": 2, "fixed_point_iterations": 10}),
    "1+.5+.25 refine fp5": Recipe(scales=(1, .5, .25), refine={"fixed_point_iterations": 5}),
    "1+.25 refine fp10": Recipe(scales=(1, .25), refine={"fixed_point_iterations": 10}),
    "1+.25 refine fp15": Recipe(scales=(1, .25), refine={"fixed_point_iterations": 15}),
    "1+.25 refine fp10 agg21": Recipe(scales=(1, .25), fusion={"aggregate": 21}, refine={"fixed_point_iterations": 10}),
}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--weights", default=None)
    p.add_argument("--cache", default="/tmp/flowcli-candidates")
    p.add_argument("--only", nargs="*", default=None, help="variant names to run (default: all)")
    args = p.parse_args()
    est = Estimator(args.weights, device="cpu", recipe="plain")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    samples = list(open_dataset("folder", args.root))
    cands, dis = {}, defaultdict(list)
    for s in samples:
        f = cache / (s["name"].replace("/", "_") + ".npz")
        if not f.exists():
            flows = {f"s{sc:g}": est.flow_tensor(*(__import__("torch").from_numpy(x[None]) for x in (s["img1"], s["img2"])),
                                                 sc)[0].permute(1, 2, 0).numpy() for sc in (1, 0.5, 0.25)}
            np.savez(f, **flows)
        cands[s["name"]] = dict(np.load(f))
        dis[s["sequence"]].append(aee(baseline_flow("dis", s["img1"], s["img2"]), s["flow"], s.get("valid")))
    dis = {g: float(np.mean(v)) for g, v in dis.items()}
    print("DIS medium:", " ".join(f"{g} {v:.3f}" for g, v in sorted(dis.items())))
    for name, recipe in VARIANTS.items():
        if args.only and name not in args.only:
            continue
        groups, seconds = defaultdict(list), []
        for s in samples:
            c = [cands[s["name"]][f"s{sc:g}"] for sc in recipe.scales]
            t0 = time.perf_counter()
            flow = recipe.finish(s["img1"], s["img2"], c)
            seconds.append(time.perf_counter() - t0)
            groups[s["sequence"]].append(aee(flow, s["flow"], s.get("valid")))
        g = {k: float(np.mean(v)) for k, v in groups.items()}
        bar = max(g[k] / dis[k] for k in g)
        print(f"{name:28s} " + " ".join(f"{k} {v:.3f}" for k, v in sorted(g.items()))
              + f"  bar {bar:.3f}  post {np.mean(seconds):.3f} s/pair", flush=True)


if __name__ == "__main__":
    main()
