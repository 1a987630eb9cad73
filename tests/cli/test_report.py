"""flowcli eval --report: the folder and its page from a real run, the same numbers as --json, failed pairs as failed
rows, a folder holding other files refused unless --overwrite, and the one line on what is left out without
matplotlib."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from flowcli.io import read_image
from tests.support import build_folder, files_in, one_error_line


@pytest.fixture
def tree(tmp_path, real):
    root, _, _ = build_folder(tmp_path / "pairs", real, names=("chairs_a", "chairs_b", "kitti15_x"))
    return root


def refs(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


def test_report_from_a_run(invoke, tree, tmp_path):
    out, res = tmp_path / "rep", tmp_path / "res.json"
    r = invoke("eval", "--dataset", "folder", "--root", tree, "--baseline", "dis", "--baseline", "farneback",
               "--json", res, "--report", out)
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    # per pair frame 1, the truth, and each method's colors and errors, each full size and as a thumbnail
    assert f"report: {out / 'index.html'} (3 pairs, 36 pictures" in r.stderr
    page = (out / "index.html").read_text()
    assert all((out / f).is_file() for f in refs(page)) and len(refs(page)) == 36 + 2  # + the wheel and the chart
    assert not re.search(r"https?://|(?:src|href)=\"//", page)  # nothing from the network
    doc = json.loads(res.read_text())
    assert set(doc["methods"]) == {"dis", "farneback"} and doc["methods"]["dis"]["pairs"] == 3
    for mid in ("dis", "farneback"):
        m = doc["methods"][mid]
        row = re.search(rf"<td>folder \(all\)</td><td>{re.escape(m['label'])}</td>(.*?)</tr>", page).group(1)
        assert f"<td class=n>{m['summary']['aee']:.3f}</td>" in row  # the numbers of --json
        for im in m["per_image"]:
            assert f"{m['label']}: AEE {im['aee']:.3f} px" in page
    # rows by DIS's AEE, worst first
    dis = {im["name"]: im["aee"] for im in doc["methods"]["dis"]["per_image"]}
    order = [n for n, _ in re.findall(r'<tr[^>]* data-name="([^"]+)" data-aee0="([^"]+)"', page)]
    assert order == sorted(dis, key=dis.get, reverse=True)
    # the chart of the AEE by true motion, and how the run was made
    assert read_image(out / "aee_by_motion.png").shape == (360, 800, 3)
    assert "Left out" not in page
    made = page[page.index("How it was made"):]
    assert "flowcli eval --dataset folder" in made and f"--report {out}" in made and "OpenCV" in made
    # full-size pictures are the pairs' size, thumbnails 200 px wide at most
    assert read_image(out / "full" / "00000_frame1.jpg").shape == read_image(tree / "chairs_a" / "img1.png").shape
    assert max(read_image(p).shape[1] for p in (out / "thumbs").iterdir()) <= 200


def test_failed_pairs_are_failed_rows(invoke, tree, tmp_path):
    (tree / "chairs_b" / "img2.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    out, res = tmp_path / "rep", tmp_path / "res.json"
    r = invoke("eval", "--dataset", "folder", "--root", tree, "--baseline", "dis", "--report", out, "--json", res)
    assert r.exit_code == 1
    lines = r.stderr.splitlines()
    assert any(ln.startswith("failed: dis: chairs_b: ") and "img2.png" in ln for ln in lines)
    assert lines[-1] == f"error: 1 of 3 pairs failed (failed rows in {out / 'index.html'})"
    page = (out / "index.html").read_text()
    row = re.search(r'<tr class="failed" data-name="chairs_b"[^>]*>(.*?)</tr>', page).group(1)
    assert "failed: " in row and "img2.png" in row and "truncated PNG" in row
    assert "1 of 3 pairs failed" in page
    assert re.findall(r'<tr[^>]* data-name="([^"]+)"', page)[0] == "chairs_b"  # failed rows first
    assert json.loads(res.read_text())["methods"]["dis"]["pairs"] == 2  # the others are scored as usual


def test_folder_holding_files_is_refused_unless_overwrite(invoke, tree, tmp_path):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    r = invoke("eval", "--dataset", "folder", "--root", tree, "--baseline", "dis", "--report", out)
    assert r.exit_code == 1
    line = one_error_line(r)
    assert str(out) in line and "holds other files" in line and "--overwrite" in line
    assert files_in(out) == ["notes.txt"]
    r = invoke("eval", "--dataset", "folder", "--root", tree, "--baseline", "dis", "--report", out, "--overwrite",
               "--limit", "1")
    assert r.exit_code == 0, r.stderr
    assert "notes.txt" not in files_in(out) and "index.html" in files_in(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs", "rep"]  # nothing hidden left beside it


@pytest.mark.parametrize("case", ["json-inside", "holds-dataset", "overwrite-alone", "a-file"])
def test_report_bad_input(invoke, tree, tmp_path, case):
    args = ["eval", "--dataset", "folder", "--root", tree, "--baseline", "dis"]
    if case == "json-inside":
        args += ["--report", tmp_path / "rep", "--json", tmp_path / "rep" / "res.json"]
    elif case == "holds-dataset":
        args += ["--report", tmp_path, "--overwrite"]
    elif case == "a-file":
        (tmp_path / "rep.html").write_text("x")
        args += ["--report", tmp_path / "rep.html"]
    else:
        args += ["--overwrite"]
    before = files_in(tmp_path)
    r = invoke(*args)
    line = one_error_line(r)
    assert r.exit_code == (2 if case == "overwrite-alone" else 1)
    assert {"json-inside": "would replace the output", "holds-dataset": "would replace the input",
            "overwrite-alone": "--overwrite needs --report", "a-file": "not a folder"}[case] in line
    assert files_in(tmp_path) == before


def test_without_matplotlib_the_report_says_what_it_left_out(invoke, tree, tmp_path, monkeypatch):
    import flowcli.jobs.charts as charts

    monkeypatch.setattr(charts, "have_matplotlib", lambda: False)
    out = tmp_path / "rep"
    r = invoke("eval", "--dataset", "folder", "--root", tree, "--baseline", "dis", "--report", out)
    assert r.exit_code == 0, r.stderr
    page = (out / "index.html").read_text()
    notes = re.findall(r'<p class="note">Left out: (.*?)</p>', page)
    assert len(notes) == 1 and "bar chart" in notes[0] and "flowcli[report]" in notes[0]
    assert not (out / "aee_by_motion.png").exists()
    assert len(list((out / "full").iterdir())) == 3 * 4  # the pictures are all there
    assert "<h2>AEE by true motion</h2>" in page and "share of pixels" in page  # and the table
    assert "report: left out the bar chart" in r.stderr
