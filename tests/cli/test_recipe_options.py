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
    assert r.exit_code == 2 and "comma-separated" in r.stderr
    r = invoke("pair", *pair_files, "-o", tmp_path / "x.flo", "--weights", recipe_weights, "--scales", "1,9")
    assert r.exit_code == 1 and "recipe scales must be in" in r.stderr


def test_info_shows_the_recipe(invoke, recipe_weights, weights_file):
    r = invoke("info", "--weights", recipe_weights)
    assert r.exit_code == 0, r.stderr
    assert "recipe default: scales 1, 0.5; census fusion; variational refinement" in r.stderr
    r = invoke("info", "--weights", weights_file, "--json")
    assert json.loads(r.stdout)["weights"]["recipe"]["scales"] == [1.0]  # no recipe in the file: the plain network
