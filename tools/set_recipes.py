"""Write a weights file's inference recipes, and any extra weight sets they name, into it; the main tensors stay
exactly as they are.

    python tools/set_recipes.py weights/flowcli-synthetic.pt weights/flowcli-synthetic.recipes.json \
        [--selector S.json] [--weight-set large=~/.cache/flowcli/runs/train_synthetic/step_0031000.pt]

The JSON file maps recipe names (``default``, ``fast``, ``quality``) to recipes (:meth:`flowcli.recipe.Recipe.to_dict`
form); a selection written as ``{"method": "learned"}`` without weights takes the selector of ``--selector`` (a
``tools/train_selector.py`` output), which is then also written back into the JSON file, so that the file in git is
what the weights carry. ``default`` becomes ``meta["recipe"]``, the others ``meta["recipes"]``.

``--weight-set NAME=SOURCE`` (repeatable) stores other weights for the network under ``NAME``, for recipe candidates
``net@S:NAME``: SOURCE is a flowcli checkpoint or a training run state (its moving average of the weights); only the
tensors that differ from the main weights are stored (in fp16), so coarse levels trained for large motions cost only
those levels. ``--weight-set NAME=`` removes one. Every recipe and weight set is checked by reading the written file
back (:func:`flowcli.weights.read_checkpoint`) before it replaces the old one.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.io.atomic import atomic_path  # noqa: E402
from flowcli.recipe import Recipe  # noqa: E402
from flowcli.weights import read_checkpoint, weight_set_delta  # noqa: E402


def source_weights(source: str) -> dict:
    """The float32 state dict of a checkpoint, or of a run state's moving average (exported on the way)."""
    obj = torch.load(source, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and "model" in obj and "config" in obj:  # a training run state
        from flowcli.train import export_weights

        with tempfile.TemporaryDirectory() as tmp:
            return read_checkpoint(export_weights(source, Path(tmp) / "w.pt", name="weight set")).state_dict
    return read_checkpoint(source).state_dict


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("recipes")
    p.add_argument("--selector", default=None)
    p.add_argument("--weight-set", action="append", default=[], metavar="NAME=SOURCE")
    args = p.parse_args()
    recipes = json.loads(Path(args.recipes).read_text())
    selector = json.loads(Path(args.selector).read_text()) if args.selector else None
    for name, r in recipes.items():
        if r.get("selection", {}).get("method") == "learned" and selector is not None:
            r["selection"] = selector
        recipes[name] = {**Recipe.from_dict({**r, "name": name}).to_dict()}
    if set(recipes) - {"default", "fast", "quality"} or "default" not in recipes:
        raise SystemExit(f"{args.recipes}: name default and optionally fast and quality, got {sorted(recipes)}")
    obj = torch.load(args.weights, map_location="cpu", weights_only=True)
    obj["meta"]["recipe"] = recipes["default"]
    obj["meta"]["recipes"] = {k: v for k, v in recipes.items() if k != "default"}
    sets = dict(obj.get("weight_sets") or {})
    main_state = {k: v.float() for k, v in obj["state_dict"].items()}
    for item in args.weight_set:
        name, sep, source = item.partition("=")
        if not sep:
            raise SystemExit(f"--weight-set {item!r}: expected NAME=SOURCE")
        if not source:
            sets.pop(name, None)
            continue
        delta = weight_set_delta(main_state, source_weights(str(Path(source).expanduser())), half=True)
        sets[name] = {k: v.half().contiguous() for k, v in delta.items()}
        print(f"weight set {name}: {len(delta)} of {len(main_state)} tensors, "
              f"{sum(v.numel() for v in delta.values()):,} numbers")
    if sets:
        obj["weight_sets"] = sets
    else:
        obj.pop("weight_sets", None)
    with atomic_path(Path(args.weights)) as tmp:
        torch.save(obj, tmp)
        read_checkpoint(tmp)  # refuses a recipe naming a weight set the file lacks, before the rename
    Path(args.recipes).write_text(json.dumps(recipes, indent=1) + "\n")
    print(f"{args.weights}: recipes {', '.join(recipes)} written" + (f"; weight sets {', '.join(sets)}" if sets else ""))


if __name__ == "__main__":
    main()
