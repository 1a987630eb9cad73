"""Measure training snapshots on real pairs: the figures used to pick which snapshot becomes the bundled weights.

Run ``python benchmarks/eval_snapshots.py runs/synthetic/step_0012000.pt [...] [--raw] [--root ../shared/data/real]``.
Each run state is exported (averaged weights; with ``--raw`` also the raw ones) to a temporary checkpoint and
measured (a weights file, e.g. ``weights/flowcli-synthetic.pt`` or what ``benchmarks/train_gpu.sh`` brought back, is
measured as it is) with ``flowcli eval --dataset folder --per-sequence``; prints one JSON line per snapshot with the AEE per
group, the distance to the team's bar (``bar``: the largest over groups of AEE / DIS-medium AEE, measured here on the
same pairs; the bar "below DIS medium on every group" is met when it is under 1), which decides the bundled snapshot
since the tenth session, and the score that breaks ties (the mean over groups of AEE / zero-flow AEE; lower is better,
zero flow = 1; the rule up to the ninth session), and appends the line to ``--log`` (default
``runs/snapshot_evals.jsonl``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.baselines import baseline_flow  # noqa: E402
from flowcli.data.datasets import open_dataset  # noqa: E402
from flowcli.metrics import aee  # noqa: E402
from flowcli.train import export_weights  # noqa: E402


def reference_aee(root: str) -> tuple[dict, dict]:
    """Per group, the mean over its pairs of the AEE of predicting no motion, and that of OpenCV DIS (medium)."""
    zero: dict = {}
    dis: dict = {}
    for s in open_dataset("folder", root):
        zero.setdefault(s["sequence"], []).append(aee(np.zeros_like(s["flow"]), s["flow"], s.get("valid")))
        dis.setdefault(s["sequence"], []).append(
            aee(baseline_flow("dis", s["img1"], s["img2"]), s["flow"], s.get("valid")))
    return ({g: float(np.mean(v)) for g, v in zero.items()}, {g: float(np.mean(v)) for g, v in dis.items()})


def is_run_state(path: str) -> bool:
    """A trainer's run state (``last.pt``, ``step_*.pt``) rather than a weights file."""
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return isinstance(state, dict) and state.get("format") == "flowcli-run"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("snapshots", nargs="+")
    ap.add_argument("--root", default="../shared/data/real")
    ap.add_argument("--raw", action="store_true", help="also measure the raw (not averaged) weights")
    ap.add_argument("--log", default="runs/snapshot_evals.jsonl")
    args = ap.parse_args()
    missing = [s for s in args.snapshots if not Path(s).exists()]
    if missing:
        sys.exit(f"{missing[0]}: no such run state or weights file")
    if not Path(args.root).is_dir():
        sys.exit(f"{args.root}: no such folder of real pairs (--root)")
    zero, dis = reference_aee(args.root)
    with tempfile.TemporaryDirectory() as tmp:
        for snap in args.snapshots:
            run_state = is_run_state(snap)
            for average in (True, False) if args.raw and run_state else (True,):
                kind = ("avg" if average else "raw") if run_state else "file"
                weights, result = Path(tmp) / f"{kind}.pt", Path(tmp) / f"{kind}.json"
                if run_state:
                    export_weights(snap, weights, name="snapshot", average=average)
                else:
                    weights = Path(snap)
                proc = subprocess.run([sys.executable, "-m", "flowcli", "eval", "--dataset", "folder", "--root",
                                       args.root, "--per-sequence", "--weights", str(weights), "--json", str(result)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                if proc.returncode:
                    sys.exit(f"{snap}: flowcli eval failed:\n{proc.stderr.strip()}")
                per = json.loads(result.read_text())["methods"]["liteflownet"]["per_sequence"]
                aee = {g: round(per[g]["aee"], 3) for g in sorted(zero)}
                line = {"snapshot": snap, "weights": kind, "aee": aee,
                        "score": round(float(np.mean([aee[g] / zero[g] for g in zero])), 4),
                        "bar": round(max(aee[g] / dis[g] for g in dis), 3)}
                print(json.dumps(line), flush=True)
                if args.log:
                    Path(args.log).parent.mkdir(parents=True, exist_ok=True)
                    with open(args.log, "a") as fh:
                        fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
