"""flowcli eval: the table, JSON and Markdown outputs, baselines and the network, submissions, and the errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flowcli.io import read_flow
from tests.support import H, W, build_folder, build_sintel, one_error_line

KEYS = {"method", "label", "dataset", "split", "passes", "root", "metric_kind", "pairs", "scored", "seconds",
        "seconds_per_pair", "summary", "per_sequence", "per_image", "submission_dir", "written"}


@pytest.fixture
def folder_tree(tmp_path, real):
    """Two real pairs cropped to 64x96, with their ground truth (a .flo and a sparse KITTI PNG)."""
    root, _, _ = build_folder(tmp_path / "pairs", real, names=("chairs_a", "kitti15_x"), h=H, w=W)
    return root


def test_baseline_table_and_json(invoke, folder_tree, tmp_path):
    out = tmp_path / "res.json"
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--baseline", "dis", "--json", out,
               "--per-sequence")
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""  # results go to the file, the table to stderr
    assert "DIS medium" in r.stderr and "Fl-all %" in r.stderr and "kitti15" in r.stderr
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "folder" and doc["pairs"] == 2 and list(doc["methods"]) == ["dis"]
    res = doc["methods"]["dis"]
    assert set(res) == KEYS
    assert res["pairs"] == res["scored"] == 2 and res["summary"]["images"] == 2
    assert set(res["per_sequence"]) == {"chairs", "kitti15"}
    assert 0 <= res["summary"]["fl_all"] <= 1 and res["summary"]["aee"] >= 0
    assert not list(tmp_path.glob(".res.tmp*"))  # written atomically


def test_network_and_baselines_in_one_table(invoke, folder_tree, weights_file, tmp_path):
    md = tmp_path / "table.md"
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--weights", weights_file, "--baseline",
               "farneback", "--baseline", "dis", "--with-model", "--json", "-", "--markdown", md, "--batch-size", "2")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc["methods"]) == ["liteflownet", "farneback", "dis"]
    net = doc["methods"]["liteflownet"]
    assert net["label"] == "LiteFlowNet (test-random)" and net["pairs"] == 2
    assert np.isfinite(net["summary"]["aee"])
    lines = md.read_text().splitlines()
    assert lines[0].startswith("| group | method |") and len(lines) == 2 + 3 + 2  # + blank line and caption
    assert lines[-1].startswith("folder, 2 pairs; measured ") and "CPUs" in lines[-1]
    assert doc["date"] in lines[-1] and doc["machine"] in lines[-1]
    assert "LiteFlowNet (test-random)" in lines[2] and "Farneback" in lines[3] and "DIS medium" in lines[4]


def test_network_alone_with_bundled_weights(invoke, folder_tree, bundled):
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--limit", "1", "--json", "-")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc["methods"]) == ["liteflownet"] and doc["methods"]["liteflownet"]["pairs"] == 1


def test_network_label_names_a_scale(invoke, folder_tree, weights_file):
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--weights", weights_file, "--limit", "1",
               "--scale", "0.5", "--json", "-")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["methods"]["liteflownet"]["label"] == "LiteFlowNet (test-random, scale 0.5)"


def test_sintel_test_split_submission(invoke, tmp_path, real):
    root, expected, _ = build_sintel(tmp_path / "sintel", real, split="test")
    out = tmp_path / "upload"
    r = invoke("eval", "--dataset", "sintel", "--split", "test", "--root", root, "--baseline", "dis",
               "--write-submission", out)
    assert r.exit_code == 0, r.stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted(f"{name}.flo" for name in expected)
    assert "clean/alley_1/frame_0001.flo" in files and "final/bamboo_2/frame_0001.flo" in files
    flow, valid = read_flow(out / "clean" / "alley_1" / "frame_0001.flo")
    assert flow.shape == expected["clean/alley_1/frame_0001"]["gt"].shape and valid.all()
    assert "wrote 6 flow files" in r.stderr and "no ground truth" in r.stderr


def test_sintel_pass_option(invoke, tmp_path, real):
    root, _, _ = build_sintel(tmp_path / "sintel", real)
    r = invoke("eval", "--dataset", "sintel", "--root", root, "--pass", "final", "--baseline", "dis", "--json", "-",
               "--per-sequence")
    assert r.exit_code == 0, r.stderr
    res = json.loads(r.stdout)["methods"]["dis"]
    assert res["pairs"] == 3 and all(im["name"].startswith("final/") for im in res["per_image"])
    assert res["summary"]["aee_noc"] is not None and "AEE noc" in r.stderr  # occlusion masks -> noc/occ columns


def test_missing_root(invoke, tmp_path):
    missing = tmp_path / "nowhere"
    r = invoke("eval", "--dataset", "folder", "--root", missing, "--baseline", "dis")
    assert r.exit_code == 1
    assert str(missing) in one_error_line(r)


def test_wrong_layout(invoke, folder_tree):
    r = invoke("eval", "--dataset", "sintel", "--root", folder_tree, "--baseline", "dis")
    assert r.exit_code == 1
    assert str(folder_tree / "training" / "clean") in one_error_line(r)


def test_missing_ground_truth(invoke, tmp_path, real):
    root, _, _ = build_sintel(tmp_path / "sintel", real, split="test")
    r = invoke("eval", "--dataset", "sintel", "--split", "test", "--root", root, "--baseline", "dis")
    assert r.exit_code == 1
    assert str(root / "training" / "flow") in one_error_line(r)


def test_folder_pair_without_ground_truth(invoke, folder_tree):
    (folder_tree / "chairs_a" / "gt.flo").unlink()
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--baseline", "dis")
    assert r.exit_code == 1
    assert str(folder_tree / "chairs_a" / "gt.flo") in one_error_line(r)


def test_usage_errors(invoke, folder_tree, tmp_path):
    r = invoke("eval", "--dataset", "sintel", "--split", "nope", "--root", folder_tree, "--baseline", "dis")
    assert r.exit_code == 2 and "'nope'" in one_error_line(r)
    r = invoke("eval", "--dataset", "folder", "--pass", "clean", "--root", folder_tree, "--baseline", "dis")
    assert r.exit_code == 2 and "--pass" in one_error_line(r)
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--baseline", "tvl1")
    assert r.exit_code == 2
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--baseline", "dis", "--json",
               tmp_path / "no" / "such" / "dir" / "r.json")
    assert r.exit_code == 1 and "does not exist" in one_error_line(r)


def test_by_boundary_table_markdown_and_json(invoke, folder_tree, tmp_path):
    from flowcli.data.datasets import open_dataset
    from flowcli.metrics import aee_by_boundary

    md, js, sub = tmp_path / "b.md", tmp_path / "b.json", tmp_path / "sub"
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--baseline", "dis", "--by-boundary",
               "--markdown", md, "--json", js, "--write-submission", sub)
    assert r.exit_code == 0, r.stderr
    assert "AEE by distance to the nearest motion boundary" in r.stderr and "AEE by true motion" not in r.stderr
    res = json.loads(js.read_text())["methods"]["dis"]
    # the same numbers from aee_by_boundary on each pair's prediction (the submission's .flo) and ground truth
    ds = open_dataset("folder", folder_tree)
    expected = {}
    for i in range(len(ds)):
        s = ds[i]
        flow, _ = read_flow(sub / f"{s['name']}.flo")
        expected[s["name"]] = aee_by_boundary(flow, s["flow"], s.get("valid"))
    assert len(expected) == 2
    for img in res["per_image"]:
        got, want = img["by_boundary"], expected[img["name"]]
        assert list(got) == ["0-10", "10-60", "60+"]
        assert [b["pixels"] for b in got.values()] == [b["pixels"] for b in want.values()]
        for label in want:
            assert got[label]["aee"] == pytest.approx(want[label]["aee"], rel=1e-6)
    pooled = res["summary"]["by_boundary"]
    labels = list(pooled)
    n = [sum(e[b]["pixels"] for e in expected.values()) for b in labels]
    assert [pooled[b]["pixels"] for b in labels] == n and n[0] > 0
    assert pooled["0-10"]["aee"] == pytest.approx(
        sum(e["0-10"]["pixels"] * e["0-10"]["aee"] for e in expected.values()) / n[0], rel=1e-6)
    assert abs(sum(b["share"] for b in pooled.values()) - 1) < 1e-9
    text = md.read_text()
    cells = [f"{pooled[b]['aee']:.3f}" if pooled[b]["aee"] is not None else "-" for b in labels]
    assert "| method | 0-10 px | 10-60 px | 60+ px |" in text
    assert "| DIS medium | " + " | ".join(cells) + " |" in text
    assert "| 0-1 px |" not in text  # --by-magnitude's table only when asked for


def test_recipe_and_plain_side_by_side_with_bands(invoke, folder_tree, tmp_path, recipe_weights, weights_file):
    md, js = tmp_path / "t.md", tmp_path / "t.json"
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--weights", recipe_weights, "--with-plain",
               "--baseline", "dis", "--with-model", "--by-magnitude", "--markdown", md, "--json", js)
    assert r.exit_code == 0, r.stderr
    doc = json.loads(js.read_text())
    assert list(doc["methods"]) == ["liteflownet-recipe", "liteflownet", "dis"]
    labels = [m["label"] for m in doc["methods"].values()]
    assert labels[:2] == ["LiteFlowNet + default recipe (with-recipe)", "LiteFlowNet (with-recipe)"]
    bands = doc["methods"]["dis"]["summary"]["by_magnitude"]
    assert list(bands) == ["0-1", "1-3", "3-10", "10-30", "30-100", "100+"]
    assert abs(sum(b["share"] for b in bands.values()) - 1) < 1e-9
    text = md.read_text()
    assert "| method | 0-1 px | 1-3 px | 3-10 px | 10-30 px | 30-100 px | 100+ px |" in text
    assert "| share of pixels |" in text and "AEE by true motion" in r.stderr
    assert "0-10 px" not in text and "motion boundary" not in r.stderr  # --by-boundary's table only when asked for
    # without a recipe in the weights, --with-plain adds nothing: the network is plain already
    r = invoke("eval", "--dataset", "folder", "--root", folder_tree, "--weights", weights_file, "--with-plain",
               "--json", js)
    assert r.exit_code == 0, r.stderr
    assert list(json.loads(js.read_text())["methods"]) == ["liteflownet"]
