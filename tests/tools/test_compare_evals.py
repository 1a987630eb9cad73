"""tools/compare_evals.py: the before/after tables of a training stage, from two eval JSON files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "compare_evals.py"


def report(aee: dict[str, dict[str, float]], bands: dict[str, dict[str, tuple[int, float]]]) -> dict:
    """An eval JSON holding, per method, per-group AEEs and (pixels, AEE) per band of true motion."""
    methods = {}
    for method, groups in aee.items():
        per_seq = {g: {"aee": v, "by_magnitude": {b: {"pixels": n, "aee": e}
                                                  for b, (n, e) in bands.get(method, {}).get(g, {}).items()}}
                   for g, v in groups.items()}
        methods[method] = {"per_sequence": per_seq}
    return {"methods": methods}


def run(tmp_path, before: dict, after: dict) -> subprocess.CompletedProcess:
    a, b = tmp_path / "before.json", tmp_path / "after.json"
    a.write_text(json.dumps(before))
    b.write_text(json.dumps(after))
    return subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True, text=True)


def test_groups_bar_and_pixel_weighted_bands(tmp_path):
    dis = {"chairs": 4.0, "kitti15": 40.0, "sintel": 0.5}
    before = report({"liteflownet": {"chairs": 4.0, "kitti15": 30.0, "sintel": 1.0},
                     "liteflownet-recipe": {"chairs": 3.0, "kitti15": 30.0, "sintel": 0.4}, "dis": dis}, {})
    # chairs: 300 px at 10 px AEE, KITTI: 100 px at 50 px AEE in the 30-100 band -> pooled (3000 + 5000) / 400 = 20;
    # the Sintel pixels are not pooled
    bands = {"chairs": {"30-100": (300, 10.0)}, "kitti15": {"30-100": (100, 50.0)}, "sintel": {"30-100": (900, 1.0)}}
    after = report({"liteflownet": {"chairs": 2.0, "kitti15": 20.0, "sintel": 0.5},
                    "liteflownet-recipe": {"chairs": 2.0, "kitti15": 20.0, "sintel": 0.25}, "dis": dis},
                   {"liteflownet": bands, "liteflownet-recipe": bands, "dis": bands})
    done = run(tmp_path, before, after)
    assert done.returncode == 0, done.stderr
    groups, bands = (table(text) for text in done.stdout.split("\n\n", 1))
    assert groups["network alone, before"] == ["4.000", "30.000", "1.000", "2.000"]   # bar: Sintel 1.0 / 0.5
    assert groups["default recipe, after"][-1] == "0.500"                            # 0.5 on every group
    assert bands["network alone, after"][4] == "20.000"                              # the 30-100 px band
    assert bands["network alone, after"][0] == "-"                                   # no pixels in 0-1 px


def table(text: str) -> dict[str, list[str]]:
    """Markdown table rows: first cell -> the other cells."""
    return {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ") and "---" not in line}


def test_a_report_without_the_plain_network_is_named(tmp_path):
    doc = report({"liteflownet-recipe": {"chairs": 1.0}, "dis": {"chairs": 1.0}}, {})
    done = run(tmp_path, doc, doc)
    assert done.returncode != 0
    assert "before.json" in done.stderr and "liteflownet" in done.stderr and "Traceback" not in done.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
