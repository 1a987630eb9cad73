"""Compare two measurements of the same pairs, before and after a training stage, in the model card's terms.

    python tools/compare_evals.py BEFORE.json AFTER.json [--large chairs,kitti15]

Each file is the JSON of `flowcli eval --dataset folder --root PAIRS --baseline dis --with-model --with-plain
--per-sequence --by-magnitude --json FILE`. Prints two Markdown tables: AEE per group for the network alone and the
default recipe, before and after, beside DIS medium, with the bar (the largest over groups of AEE / DIS AEE); and AEE
per band of true motion, pooled over the pixels of the large-motion groups (chairs and KITTI), where the large-motion
stage is judged.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.metrics import magnitude_bin_labels  # noqa: E402

BANDS = magnitude_bin_labels()  # the keys of an eval report's by_magnitude
ROWS = (("liteflownet", "network alone"), ("liteflownet-recipe", "default recipe"))


def load(path: str) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    missing = [m for m, _ in ROWS + (("dis", ""),) if m not in doc.get("methods", {})]
    if missing:
        raise SystemExit(f"{path}: no {', '.join(missing)} in its methods (eval with --with-model --with-plain "
                         "--baseline dis)")
    return doc


def groups(doc: dict, method: str) -> dict[str, float]:
    return {g: s["aee"] for g, s in doc["methods"][method]["per_sequence"].items()}


def pooled_bands(doc: dict, method: str, chosen: set[str]) -> dict[str, float | None]:
    """Per band, the pixel-weighted AEE over the chosen groups' pixels (None where they hold none)."""
    out = {}
    for band in BANDS:
        num = den = 0.0
        for g, s in doc["methods"][method]["per_sequence"].items():
            b = (s.get("by_magnitude") or {}).get(band) or {}
            if g in chosen and b.get("pixels") and b.get("aee") is not None:
                num, den = num + b["aee"] * b["pixels"], den + b["pixels"]
        out[band] = num / den if den else None
    return out


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--large", default="chairs,kitti15", help="groups pooled for the band table")
    args = p.parse_args()
    docs = {"before": load(args.before), "after": load(args.after)}
    dis = groups(docs["after"], "dis")
    names = sorted(dis)
    print("| method | " + " | ".join(names) + " | bar |")
    print("|---|" + "---:|" * (len(names) + 1))
    for method, label in ROWS:
        for when, doc in docs.items():
            aee = groups(doc, method)
            bar = max(aee[g] / dis[g] for g in names)
            print(f"| {label}, {when} | " + " | ".join(fmt(aee.get(g)) for g in names) + f" | {bar:.3f} |")
    print("| DIS medium | " + " | ".join(fmt(dis[g]) for g in names) + " | 1.000 |")
    chosen = set(args.large.split(","))
    present = sorted(chosen & set(names))
    print(f"\nAEE per band of true motion, pixels of {' and '.join(present)} pooled:\n")
    print("| method | " + " | ".join(f"{b} px" for b in BANDS) + " |")
    print("|---|" + "---:|" * len(BANDS))
    for method, label in ROWS:
        for when, doc in docs.items():
            print(f"| {label}, {when} | " + " | ".join(fmt(v) for v in pooled_bands(doc, method, chosen).values())
                  + " |")
    print("| DIS medium | " + " | ".join(fmt(v) for v in pooled_bands(docs["after"], "dis", chosen).values()) + " |")


if __name__ == "__main__":
    main()
