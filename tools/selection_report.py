"""Measure a recipe's selection among its candidate flows on folders of pairs with ground truth.

    python tools/selection_report.py ../shared/data/real [more roots] [--weights W] [--recipe default|fast|quality]
                                     [--json out.json] [--cache DIR]

Per group of pairs and per band of true motion (pixel-weighted over the group's valid pixels), the AEE of every
candidate alone, of the per-pixel oracle (the candidate nearest the truth, before refinement), of the census selection
on the same candidates (where the recipe's is another), of the recipe's selected flow before and after its refinement,
and the share of pixels where the selection took the oracle's candidate.
The gap between "oracle" and "selected" is what a better selection could still gain. ``--cache`` keeps each pair's
candidate flows so that a second run (another selector on the same candidates) skips the network.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from flowcli.api import Estimator
from flowcli.data.datasets import open_dataset
from flowcli.metrics import band_sums, magnitude_bin_labels
from flowcli.postprocess import fuse_candidates, variational_refine


def pair_rows(recipe, img1, img2, flows, gt, valid) -> dict[str, np.ndarray]:
    """Per-pixel EPE maps of every candidate, the oracle, the selection before/after refinement, and the agreement."""
    epe = {spec: np.hypot(*(f - gt).transpose(2, 0, 1)) for spec, f in zip(recipe.candidates, flows)}
    stack = np.stack(list(epe.values()))
    selected, choice = recipe.select(img1, img2, flows)
    out = dict(epe)
    out["oracle"] = stack.min(0)
    if recipe.selection["method"] != "census":  # the census selection on the same candidates, for comparison
        census, _ = fuse_candidates(img1, img2, list(flows))
        out["census"] = np.hypot(*(census - gt).transpose(2, 0, 1))
    out["selected"] = np.hypot(*(selected - gt).transpose(2, 0, 1))
    if recipe.refine is not None:
        refined = variational_refine(img1, img2, selected, **recipe.refine)
        out["refined"] = np.hypot(*(refined - gt).transpose(2, 0, 1))
    out["agreement"] = (choice == stack.argmin(0)).astype(np.float64)
    return out


def summarise(rows: list[tuple[dict, np.ndarray, np.ndarray]]) -> dict:
    """{column: {"aee": mean over pairs, "bands": {band: mean}, "pixels": {band: n}}} over the (maps, gt, valid) of a
    group (bands: :func:`flowcli.metrics.band_sums`, pixel-weighted over the group)."""
    labels = magnitude_bin_labels()
    counts, sums = np.zeros(len(labels)), defaultdict(lambda: np.zeros(len(labels)))
    for maps, gt, valid in rows:
        for key, m in maps.items():
            n, total = band_sums(m, gt, valid)
            sums[key] += total
        counts += n
    return {key: {"aee": float(np.mean([maps[key][valid].mean() for maps, _, valid in rows])),  # as eval's groups
                  "bands": {lab: (float(s[i] / counts[i]) if counts[i] else None) for i, lab in enumerate(labels)},
                  "pixels": {lab: int(counts[i]) for i, lab in enumerate(labels)}}
            for key, s in sums.items()}


def table(summary: dict, columns: list[str]) -> str:
    head = "| group | " + " | ".join(columns) + " |"
    lines = [head, "|---|" + "---:|" * len(columns)]
    for group, cols in summary.items():
        cells = [(f"{100 * cols[c]['aee']:.1f} %" if c == "agreement" else f"{cols[c]['aee']:.3f}") if c in cols
                 else "" for c in columns]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def band_table(summary: dict, columns: list[str]) -> str:
    """Per band, pooled over every group's pixels."""
    labels = magnitude_bin_labels()
    lines = ["| band | pixels | " + " | ".join(columns) + " |", "|---|---:|" + "---:|" * len(columns)]
    for lab in labels:
        n = sum(cols[columns[0]]["pixels"][lab] for cols in summary.values())
        if not n:
            continue
        cells = []
        for c in columns:
            tot = sum((cols[c]["bands"][lab] or 0.0) * cols[c]["pixels"][lab] for cols in summary.values() if c in cols)
            cells.append(f"{100 * tot / n:.1f} %" if c == "agreement" else f"{tot / n:.3f}")
        lines.append(f"| {lab} px | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("roots", nargs="+")
    p.add_argument("--weights", default=None)
    p.add_argument("--recipe", default="default")
    p.add_argument("--json", default=None)
    p.add_argument("--cache", default=None)
    args = p.parse_args()
    est = Estimator(args.weights, device="cpu", recipe=args.recipe)
    recipe = est.recipe
    cache = Path(args.cache) if args.cache else None
    if cache:
        cache.mkdir(parents=True, exist_ok=True)
    groups: dict = defaultdict(list)
    for root in args.roots:
        for s in open_dataset("folder", root):
            a, b, gt = s["img1"], s["img2"], np.nan_to_num(s["flow"])
            valid = s.get("valid")
            valid = np.isfinite(s["flow"]).all(2) if valid is None else valid
            # where the recipe takes a pan out first, its candidates and selection see the rest of the motion: the
            # truth is measured against them minus the pan (the same errors as with the pan added back)
            b, offset = recipe.prepare(a, b)
            gt = gt - np.asarray(offset, np.float32)
            key = hashlib.sha1(f"{root}|{s['name']}|{','.join(recipe.candidates)}|{est.checkpoint.name}|"
                               f"{est.precision}|{offset}".encode()).hexdigest()[:16]
            path = cache / f"{key}.npz" if cache else None
            if path and path.exists():
                flows = list(np.load(path)["flows"])
            else:
                flows = recipe.all_candidates(a, b, est.candidates([a], [b])[0])
                if path:
                    np.savez(path, flows=np.stack(flows))
            group = f"{Path(root).name}:{s['sequence']}"
            bands_by = np.nan_to_num(s["flow"])  # bands of the true motion, pan included
            groups[group].append((pair_rows(recipe, a, b, flows, gt, valid), bands_by, valid))
            print(f"{group} {s['name']}", flush=True)
    summary = {g: summarise(rows) for g, rows in groups.items()}
    census = ["census"] if recipe.selection["method"] != "census" else []
    columns = (list(recipe.candidates) + ["oracle"] + census + ["selected"] + (["refined"] if recipe.refine else [])
               + ["agreement"])
    print(f"\nrecipe {recipe.describe()} ({est.precision})\n")
    print(table(summary, columns))
    print()
    print(band_table(summary, columns))
    if args.json:
        Path(args.json).write_text(json.dumps({"recipe": recipe.to_dict(), "precision": est.precision,
                                               "groups": summary}, indent=1))


if __name__ == "__main__":
    main()
