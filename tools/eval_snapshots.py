"""Measure training snapshots the way the bundling rule reads them: per real-pair group and per band of true motion,
the plain network and the default recipe, against DIS medium.

    python tools/eval_snapshots.py ~/.cache/flowcli/runs/train_synthetic/step_0026000.pt [...] [--root ../shared/data/real] [--plain-only]
    python tools/eval_snapshots.py --weights weights/flowcli-synthetic.pt

For each run state (its moving average of the weights, exported to a temporary file) or checkpoint, prints one line:
AEE per group, the 30-100 px band on the chairs and KITTI pairs (where large motions are), and the bar (the largest
over groups of AEE / DIS-medium AEE; under 1 means below DIS everywhere), for the plain network and the recipe.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.api import Estimator  # noqa: E402
from flowcli.baselines import baseline_flow  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import MetricAccumulator, aee  # noqa: E402
from flowcli.train import export_weights  # noqa: E402
from flowcli.weights import load_checkpoint  # noqa: E402

LARGE = ("chairs", "kitti15")


def score(flows: dict, samples: list) -> dict:
    """{group: AEE, "large 30-100": pooled AEE of the band on the chairs and KITTI pairs}."""
    groups, large = defaultdict(list), MetricAccumulator("pixel")
    for s in samples:
        groups[s["sequence"]].append(aee(flows[s["name"]], s["flow"], s.get("valid")))
        if s["sequence"] in LARGE:
            large.add(flows[s["name"]], s["flow"], s.get("valid"))
    out = {g: float(np.mean(v)) for g, v in groups.items()}
    band = (large.summary().get("by_magnitude") or {}).get("30-100") or {}
    out["large 30-100"] = band.get("aee") or float("nan")
    return out


def line(label: str, res: dict, dis: dict) -> str:
    bar = max(res[g] / dis[g] for g in dis if not g.startswith("large"))
    return f"{label:34s} " + " ".join(f"{k} {v:.3f}" for k, v in sorted(res.items())) + f"  bar {bar:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("states", nargs="*", help="run states (last.pt, step_*.pt)")
    p.add_argument("--weights", action="append", default=[], help="checkpoints to measure as they are")
    p.add_argument("--root", default=str(ROOT.parent / "shared" / "data" / "real"))
    p.add_argument("--plain-only", action="store_true")
    args = p.parse_args()
    samples = list(open_dataset("folder", args.root))
    dis = score({s["name"]: baseline_flow("dis", s["img1"], s["img2"]) for s in samples}, samples)
    print(line("DIS medium", dis, dis), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        items = [(Path(w).name, w) for w in args.weights]
        for state in args.states:
            dst = Path(tmp) / (Path(state).stem + ".pt")
            items.append((Path(state).stem, str(export_weights(state, dst, name=Path(state).stem))))
        for label, path in items:
            recipes = {"plain": "plain"} if args.plain_only else {"plain": "plain", "recipe": load_checkpoint().recipe}
            for name, recipe in recipes.items():
                est = Estimator(path, device="cpu", recipe=recipe)
                flows = {s["name"]: est.estimate(s["img1"], s["img2"]) for s in samples}
                print(line(f"{label} {name}", score(flows, samples), dis), flush=True)


if __name__ == "__main__":
    main()
