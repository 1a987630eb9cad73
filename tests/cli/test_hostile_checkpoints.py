"""Checkpoints whose metadata is hostile or broken: refused when the weights are loaded, in one line naming the file,
exit 1, before any network runs, whatever the metadata holds."""
import sys

import pytest
import torch
from click.testing import CliRunner

from flowcli.cli import main
from flowcli.model import build_liteflownet
from flowcli.weights import save_checkpoint
from tests.support import REPO


def deep(n):
    d = {}
    node = d
    for _ in range(n):
        node["a"] = {}
        node = node["a"]
    return d


@pytest.fixture(scope="module")
def state():
    return build_liteflownet().state_dict()


@pytest.mark.parametrize("meta, words", [
    ({"recipe": {"scales": [1], "colour": 3}}, "unknown recipe setting(s): colour"),
    ({"recipe": {"scales": [1e6]}}, "scales must be in [0.0625, 4], got 1e+06"),
    ({"recipe": {"scales": [1], "refine": {"fixed_point_iterations": -5}}}, "fixed_point_iterations must be an integer"),
    ({"recipe": {"candidates": ["net@1", "telepathy"]}}, "unknown recipe candidate 'telepathy'"),
    ({"recipe": "net@1, net@0.25"}, "must be a mapping of settings, got str"),
    ({"recipe": {"refine": "deep"}}, "nested deeper than"),
    ({"recipes": {"quality": {"candidates": ["net@1"], "selection": {"method": "learned"}}}}, "selection lacks"),
    ({"recipes": {"turbo": {"candidates": ["net@1"]}}}, "fast or quality, got 'turbo'"),
    ({"recipes": ["fast"]}, "recipes must be a mapping"),
    ({"finest_level": 9}, "finest_level must be an integer 2..6"),
    ({"finest_level": "2"}, "finest_level must be an integer 2..6"),
    ({"skip_finest_r": "no"}, "skip_finest_r must be true or false"),
    ({"preprocessing": {"mean1": [0.4, "x", 0.4]}}, "mean1 must be three numbers"),
    ({"notes": list(range(300_000))}, "metadata holds more than"),
])
def test_broken_metadata_is_one_line_naming_the_file(tmp_path, state, meta, words):
    if meta.get("recipe") == {"refine": "deep"}:
        meta = {"recipe": {"refine": deep(10_000)}}
    path = tmp_path / "hostile.pt"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)  # pickling a 10,000-deep dict recurses; reading it back must not
    try:
        save_checkpoint(path, state, {"name": "hostile", **meta})
    finally:
        sys.setrecursionlimit(limit)
    out = tmp_path / "out.flo"
    r = CliRunner().invoke(main, ["pair", str(REPO / "examples" / "frame_0001.png"),
                                  str(REPO / "examples" / "frame_0002.png"), "-o", str(out), "--weights", str(path)])
    assert r.exit_code == 1, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and words in lines[0], r.stderr
    assert "Traceback" not in r.output and not out.exists()


def test_metadata_that_is_not_a_mapping_is_one_line(tmp_path, state):
    path = tmp_path / "string-meta.pt"
    torch.save({"format": "flowcli", "version": 1, "state_dict": state, "meta": "hello"}, path)
    r = CliRunner().invoke(main, ["info", "--weights", str(path)])
    assert "its metadata must be a mapping, got str" in r.stderr and str(path) in r.stderr
    assert "Traceback" not in r.output


@pytest.mark.parametrize("args, words", [
    (["--scales", "0"], "--scales"), (["--scales", "-1"], "--scales"), (["--scales", "1e9"], "--scales"),
    (["--scales", "abc"], "--scales"), (["--scales", "1,1"], "must differ"), (["--candidates", "net@9"], "--candidates"),
    (["--candidates", "sonar"], "unknown recipe candidate"), (["--scale", "0"], "--scale"),
    (["--fp32", "--bf16"], "exclude each other"), (["--recipe", "turbo"], "--recipe"),
    (["--candidates", ""], "1 to 8 candidates"), (["--candidates", "dis,dis"], "must differ"),
    (["--scale", "4", "--scales", "4"], "--scale 4 times"), (["--scale", "0.25", "--candidates", "cascade@0.125"],
                                                             "--scale 0.25 times"),
])
def test_recipe_options_out_of_range_are_usage_errors(tmp_path, args, words):
    out = tmp_path / "out.flo"
    r = CliRunner().invoke(main, ["pair", str(REPO / "examples" / "frame_0001.png"),
                                  str(REPO / "examples" / "frame_0002.png"), "-o", str(out), *args])
    assert r.exit_code == 2, r.output
    assert words in r.stderr and "Traceback" not in r.output and not out.exists()
