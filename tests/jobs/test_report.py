"""The report job: evaluate's hooks (every prediction, failed pairs skipped and listed), the report folder made whole
and refused where it must not be written, its rows and scales, and the motion statistics of clips."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from flowcli.jobs.evaluation import evaluate, merge_results, open_split
from flowcli.jobs.motion import motion_stats
from flowcli.jobs.report import EvalReport, check_report_folder, nice_ceiling
from tests.support import build_folder


class Truth:
    """A method that returns the ground truth plus a fixed offset, or non-finite flow for chosen pairs."""

    name = "truth"

    def __init__(self, dataset, offset=(0.0, 0.0), broken=()):
        self.dataset, self.offset, self.broken, self.seen = dataset, np.array(offset, np.float32), set(broken), 0

    def _samples(self):
        for i in range(len(self.dataset)):
            try:
                yield self.dataset[i]
            except ValueError:
                pass  # the broken pair: never asked for

    def estimate_batch(self, pairs, batch_size=1):
        out = []
        for img1, _ in pairs:
            sample = next(s for s in self._samples() if s["img1"].shape == img1.shape
                          and np.array_equal(s["img1"], img1))
            flow = sample["flow"] + self.offset
            if sample["name"] in self.broken:
                flow = np.full_like(flow, np.nan)
            out.append(flow)
        return out


@pytest.fixture
def tree(tmp_path, real):
    root, expected, _ = build_folder(tmp_path / "pairs", real, names=("chairs_a", "chairs_b", "kitti15_x"))
    return root, expected


def test_nice_ceiling():
    assert [nice_ceiling(x) for x in (0.2, 1.0, 1.01, 3.0, 7.5, 10.0, 23.0, 480.0)] == [1, 1, 2, 5, 10, 10, 50, 500]
    assert nice_ceiling(0.3, minimum=0.1) == 0.5 and nice_ceiling(float("nan")) == 1.0


def test_evaluate_goes_on_past_failed_pairs_when_asked(tree):
    root, _ = tree
    (root / "chairs_b" / "img1.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = open_split("folder", root)
    with pytest.raises(ValueError, match="chairs_b"):
        evaluate(ds, Truth(ds), prefetch=False)  # without on_failure a bad pair ends the run, as before
    failures, pairs = [], []
    res = evaluate(ds, Truth(ds, broken={"kitti15_x"}), on_failure=failures.append,
                   on_pair=lambda i, s, f: pairs.append((i, s["name"], f.shape)))
    assert [(f["index"], f["name"]) for f in failures] == [(1, "chairs_b"), (2, "kitti15_x")]
    assert failures[0]["sample"] is None and "img1.png" in failures[0]["error"]
    assert failures[1]["sample"]["name"] == "kitti15_x" and "non-finite" in failures[1]["error"]
    assert [(i, n) for i, n, _ in pairs] == [(0, "chairs_a")]
    assert res.pairs == res.scored == 1 and res.summary["aee"] == 0.0
    assert [f["name"] for f in res.failed] == ["chairs_b", "kitti15_x"] and "failed" not in res.to_dict()
    # shares of a job keep their failures
    a = evaluate(ds, Truth(ds), indices=[0, 1], on_failure=lambda item: None)
    b = evaluate(ds, Truth(ds), indices=[2], on_failure=lambda item: None)
    merged = merge_results([b, a])
    assert [f["index"] for f in merged.failed] == [1] and merged.pairs == 2


def test_report_rows_scales_and_order(tree, tmp_path):
    root, expected = tree
    ds = open_split("folder", root)
    out = tmp_path / "report"
    results = {}
    with EvalReport(check_report_folder(out)) as rep:
        for mid, offset in (("worse", (0.5, -0.5)), ("exact", (0.0, 0.0))):
            est = Truth(ds, offset)
            results[mid] = evaluate(ds, est, method=mid, label=f"{mid} method",
                                    on_pair=lambda i, s, f, m=mid: rep.add_pair(m, i, s, f))
        assert not out.exists()  # the folder appears whole, at the end
        summary = rep.finish(results, title="folder", pairs=len(ds))
    assert summary.folder == out and summary.pairs == 3 and summary.failed == 0
    assert summary.pictures == 2 * 3 * (2 + 2 * 2)  # frame, truth, colors and error of two methods; full and thumb
    assert not list(tmp_path.glob(".report*"))
    page = (out / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs and all((out / r).is_file() for r in refs)
    assert not re.search(r'(?:src|href)="(?:https?:)?//', page)
    # rows ordered by the first method's AEE, worst first (KITTI's sparse truth leaves a different mean per pair)
    order = re.findall(r'<tr[^>]* data-name="([^"]+)" data-aee0="([^"]+)"', page)
    aees = [float(a) for _, a in order]
    assert sorted(aees, reverse=True) == aees and len(order) == 3
    per_image = {im["name"]: im["aee"] for im in results["worse"].per_image}
    assert {n: pytest.approx(float(a)) for n, a in order} == per_image
    for name, aee in per_image.items():
        assert f"worse method: AEE {aee:.3f} px" in page
    # one color scale per row (the truth's largest magnitude): the exact method's colors equal the truth's
    from flowcli.io import read_image

    truth = read_image(out / "full" / "00000_truth.jpg").astype(int)
    exact = read_image(out / "full" / "00000_exact_flow.jpg").astype(int)
    worse = read_image(out / "full" / "00000_worse_flow.jpg").astype(int)
    assert truth.shape == expected["chairs_a"]["img1"].shape
    assert np.abs(truth - exact).mean() < 1.0 < np.abs(truth - worse).mean()
    assert read_image(out / "thumbs" / "00000_frame1.jpg").shape[1] <= 200


def test_report_folder_is_checked_before_work(tmp_path, tree):
    root, _ = tree
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds other files.*--overwrite"):
        check_report_folder(full)
    assert check_report_folder(full, overwrite=True) == full
    (tmp_path / "empty").mkdir()
    check_report_folder(tmp_path / "empty")
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a folder"):
        check_report_folder(tmp_path / "file")
    with pytest.raises(ValueError, match="would replace the input"):
        check_report_folder(root.parent, overwrite=True, inputs=[root / "chairs_a" / "img1.png"])
    with pytest.raises(ValueError, match="would replace the output"):
        check_report_folder(tmp_path / "rep", outputs=[tmp_path / "rep" / "res.json"])


def test_overwrite_replaces_the_folder_whole(tmp_path, tree):
    root, _ = tree
    ds = open_split("folder", root)
    out = tmp_path / "rep"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with EvalReport(out, overwrite=True) as rep:
        res = evaluate(ds, Truth(ds), limit=1, on_pair=lambda i, s, f: rep.add_pair("truth", i, s, f))
        rep.finish({"truth": res}, title="t", pairs=1)
    assert not (out / "old.txt").exists() and (out / "index.html").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs", "rep"]


def test_abort_leaves_nothing(tmp_path, tree):
    root, _ = tree
    ds = open_split("folder", root)
    with pytest.raises(KeyboardInterrupt):
        with EvalReport(tmp_path / "rep") as rep:
            evaluate(ds, Truth(ds), limit=1, on_pair=lambda i, s, f: rep.add_pair("truth", i, s, f))
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs"]


def test_motion_stats_of_known_flows():
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 3.0, 4.0
    s = motion_stats(flow)
    assert s["mean_px"] == s["median_px"] == s["p95_px"] == 5.0
    assert s["direction_deg"] == pytest.approx(math.degrees(math.atan2(4, 3)))
    assert motion_stats(-flow[..., ::-1] * 0 + np.array([-1.0, 0.0], np.float32))["direction_deg"] == 180.0
    up = np.zeros((4, 4, 2), np.float32)
    up[..., 1] = -2.0
    assert motion_stats(up)["direction_deg"] == 270.0
    ramp = np.zeros((1, 100, 2), np.float32)
    ramp[0, :, 0] = np.arange(100)  # magnitudes 0..99
    ramp[0, 0] = np.nan  # ignored
    s = motion_stats(ramp)
    assert s["mean_px"] == pytest.approx(50.0) and s["median_px"] == pytest.approx(50.0)
    assert s["p95_px"] == pytest.approx(np.percentile(np.arange(1, 100), 95))
    assert motion_stats(np.zeros((2, 2, 2)))["direction_deg"] == 0.0
    assert math.isnan(motion_stats(np.full((2, 2, 2), np.nan))["mean_px"])
