"""tools/set_recipes.py: recipes and extra weight sets written into a weights file, its main tensors untouched."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from flowcli.model import build_liteflownet
from flowcli.train import Stage, TrainConfig, export_weights, train
from flowcli.weights import file_sha256, read_checkpoint, save_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "set_recipes.py"


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_a_run_state_becomes_a_weight_set_of_its_differences_and_recipes_are_checked(tmp_path):
    torch.manual_seed(0)
    main = tmp_path / "w.pt"
    save_checkpoint(main, build_liteflownet().state_dict(), {"name": "w"}, half=True)
    before = torch.load(main, weights_only=True)["state_dict"]
    # a short run from those weights that trains the coarsest level only, as a large-motion stage trains a few
    cfg = TrainConfig(stages=[Stage(finest_level=6, skip_finest_r=True, steps=2, lr=1e-3,
                                    fixed_pyramid_levels=3)], crop=[64, 96], batch=2,
                      checkpoint_every=1, log_every=1, validate_every=0, workers=0, threads=1, init=str(main))
    train(cfg, tmp_path / "run", device="cpu")
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({"default": {"candidates": ["net@1", "net@0.25:large"]},
                                   "fast": {"candidates": ["net@1"]}}))
    r = run(main, recipes, "--weight-set", f"large={tmp_path / 'run' / 'last.pt'}")
    assert r.returncode == 0, r.stderr
    obj = torch.load(main, weights_only=True)
    assert all(torch.equal(obj["state_dict"][k], v) for k, v in before.items())  # the main weights as they were
    delta = obj["weight_sets"]["large"]
    assert delta and len(delta) < len(before) / 3, sorted(delta)  # only what the run trained
    assert not [k for k in delta if k.startswith(("features.levels.0.", "features.levels.1.", "features.levels.2."))]
    ckpt = read_checkpoint(main)
    exported = read_checkpoint(export_weights(tmp_path / "run", tmp_path / "e.pt", name="e")).state_dict
    whole = ckpt.weight_set("large")
    assert all(torch.equal(whole[k], exported[k]) for k in exported)
    assert ckpt.recipe.candidates == ("net@1", "net@0.25:large") and "fast" in ckpt.presets
    # a recipe naming a set the file lacks: refused, the file left exactly as it was
    digest = file_sha256(main)
    recipes.write_text(json.dumps({"default": {"candidates": ["net@1", "net@0.25:huge"]}}))
    r = run(main, recipes)
    assert r.returncode != 0 and "names the weight set 'huge', which the file does not carry" in r.stderr
    assert file_sha256(main) == digest and not list(tmp_path.glob(".w.tmp*"))
    # NAME= removes a set (then no recipe may name it)
    recipes.write_text(json.dumps({"default": {"candidates": ["net@1", "net@0.25"]}}))
    assert run(main, recipes, "--weight-set", "large=").returncode == 0
    assert read_checkpoint(main).weight_sets == {}
