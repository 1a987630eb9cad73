"""The recipe on the command line: --recipe, --scales, --refine/--no-refine, and what info shows."""
from __future__ import annotations

import json

import numpy as np

from flowcli.io import read_flow


def flow_of(invoke, pair_files, tmp_path, weights, *options):
    out = tmp_path / f"f{len(list(tmp_path.iterdir()))}.flo"
    r = invoke("pair", *pair_files, "-o", out, "--weights", weights, "--json", *options)
    assert r.exit_code == 0, r.stderr
    return read_flow(out)[0], json.loads(r.stdout)


def test_the_weights_recipe_is_the_default_and_plain_is_the_network_alone(invoke, pair_files, tmp_path,
                                                                         recipe_weights):
    default, info = flow_of(invoke, pair_files, tmp_path, recipe_weights)
    plain, info_plain = flow_of(invoke, pair_files, tmp_path, recipe_weights, "--recipe", "plain")
    assert info["recipe"] == "default" and info_plain["recipe"] == "plain"
    assert not np.allclose(default, plain)
    # the recipe without refinement and with one scale is the plain network again
    same, _ = flow_of(invoke, pair_files, tmp_path, recipe_weights, "--scales", "1", "--no-refine")
    np.testing.assert_allclose(same, plain, atol=1e-5)
    # refinement alone, from the plain network: a different field
    refined, _ = flow_of(invoke, pair_files, tmp_path, recipe_weights, "--recipe", "plain", "--refine")
    assert not np.allclose(refined, plain)


def test_bad_scales_are_usage_errors(invoke, pair_files, tmp_path, recipe_weights):
    r = invoke("pair", *pair_files, "-o", tmp_path / "x.flo", "--weights", recipe_weights, "--scales", "1,a")
    assert r.exit_code == 2 and "comma-separated" in r.stderr and "--scales" in r.stderr
    r = invoke("pair", *pair_files, "-o", tmp_path / "x.flo", "--weights", recipe_weights, "--scales", "1,9")
    assert r.exit_code == 2 and "scales must be in [0.0625, 4], got 9" in r.stderr and "--scales" in r.stderr
    assert not (tmp_path / "x.flo").exists()


def test_candidates_and_presets_on_the_command_line(invoke, pair_files, tmp_path, recipe_weights):
    """--candidates replaces the recipe's candidates (DIS alone: DIS's flow, refined); a preset the weights lack is
    one line naming what they have."""
    from flowcli.baselines import baseline_flow
    from flowcli.io import read_image

    dis, _ = flow_of(invoke, pair_files, tmp_path, recipe_weights, "--candidates", "dis", "--no-refine")
    expected = baseline_flow("dis", read_image(pair_files[0]), read_image(pair_files[1]))
    np.testing.assert_allclose(dis, expected, atol=1e-5)
    r = invoke("pair", *pair_files, "-o", tmp_path / "q.flo", "--weights", recipe_weights, "--recipe", "quality")
    assert r.exit_code == 1 and "no 'quality' recipe; they have default, plain" in r.stderr
    assert not (tmp_path / "q.flo").exists()


def test_info_shows_the_recipe(invoke, recipe_weights, weights_file):
    r = invoke("info", "--weights", recipe_weights)
    assert r.exit_code == 0, r.stderr
    assert "recipe default: net@1, net@0.5; census selection; variational refinement" in r.stderr
    assert "recipe plain: the network alone" in r.stderr
    r = invoke("info", "--weights", weights_file, "--json")
    assert json.loads(r.stdout)["weights"]["recipe"]["candidates"] == ["net@1"]  # no recipe in the file: plain


def test_info_lists_the_bundled_presets_and_their_candidates(invoke):
    from flowcli.weights import bundled_path

    r = invoke("info", "--weights", bundled_path())
    assert r.exit_code == 0, r.stderr
    for name in ("default", "fast", "quality"):
        assert f"recipe {name}: net@1" in r.stderr
    assert "dis-fine" in r.stderr and "learned selection" in r.stderr and "bf16 where native" in r.stderr
    assert r.stderr.count("pans of 24+ px taken out first") == 3


def test_a_recipe_whose_candidate_cannot_run_here_is_refused_before_any_work(invoke, tmp_path, recipe_weights,
                                                                             monkeypatch):
    """DeepFlow lives in opencv-contrib: without cv2.optflow a recipe naming it fails when it is chosen, in one line,
    before the first pair of a folder job (not once per pair, halfway through)."""
    import cv2

    from tests.support import make_frames

    make_frames(tmp_path / "frames", 4)
    frames = tmp_path / "frames"
    monkeypatch.delattr(cv2, "optflow", raising=False)
    out = tmp_path / "out"
    r = invoke("dir", frames, "-o", out, "--weights", recipe_weights, "--candidates", "net@1,deepflow")
    assert r.exit_code == 1 and "deepflow needs opencv-contrib-python" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (out.exists() and any(out.iterdir()))


def test_a_weight_set_in_the_file_is_listed_and_used_by_candidates(invoke, pair_files, tmp_path, recipe_weights):
    """A file with a second weight set: ``info`` lists it, ``--candidates net@S:NAME`` runs it (another flow than the
    main weights at that scale), and a set the file lacks is refused in one line before any output is written."""
    import torch

    from flowcli.weights import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(recipe_weights)
    torch.manual_seed(5)
    coarse = {k: torch.randn_like(v) * 0.05 for k, v in ckpt.state_dict.items() if k.startswith("matching.4.")}
    two = tmp_path / "two.pt"
    save_checkpoint(two, ckpt.state_dict, {**ckpt.meta, "name": "two"}, weight_sets={"large": coarse})
    r = invoke("info", "--weights", two)
    assert r.exit_code == 0 and f"weight set large: {len(coarse)} tensors differ" in r.stderr, r.stderr
    main, _ = flow_of(invoke, pair_files, tmp_path, two, "--candidates", "net@0.5", "--no-refine")
    large, info = flow_of(invoke, pair_files, tmp_path, two, "--candidates", "net@0.5:large", "--no-refine")
    assert info["recipe"] == "custom" and not np.allclose(main, large)
    out = tmp_path / "none.flo"
    r = invoke("pair", *pair_files, "-o", out, "--weights", recipe_weights, "--candidates", "net@1,net@0.5:large")
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr.strip() == ("error: recipe candidate net@0.5:large: with-recipe carries no weight set 'large' "
                                "(it carries: none)"), r.stderr
