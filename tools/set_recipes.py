"""Write a weights file's inference recipes into its metadata; the tensors stay exactly as they are.

    python tools/set_recipes.py weights/flowcli-synthetic.pt weights/flowcli-synthetic.recipes.json [--selector S.json]

The JSON file maps recipe names (``default``, ``fast``, ``quality``) to recipes (:meth:`flowcli.recipe.Recipe.to_dict`
form); a selection written as ``{"method": "learned"}`` without weights takes the selector of ``--selector`` (a
``tools/train_selector.py`` output), which is then also written back into the JSON file, so that the file in git is
what the weights carry. ``default`` becomes ``meta["recipe"]``, the others ``meta["recipes"]``. Every recipe is checked
(:meth:`Recipe.from_dict`) before anything is written; the file is replaced atomically.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from flowcli.io.atomic import atomic_path
from flowcli.recipe import Recipe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("recipes")
    p.add_argument("--selector", default=None)
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
    with atomic_path(Path(args.weights)) as tmp:
        torch.save(obj, tmp)
    Path(args.recipes).write_text(json.dumps(recipes, indent=1) + "\n")
    print(f"{args.weights}: recipes {', '.join(recipes)} written")


if __name__ == "__main__":
    main()
