"""flowcli.jobs.evaluation: fake trees in every official layout, built from crops of the real pairs, scored by oracle
estimators whose errors are known, so that pair counts, pairing, masks and every metric can be checked against
numbers computed here by hand."""
from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from flowcli.data.datasets import open_dataset
from flowcli.jobs.evaluation import EvalResult, compare, evaluate, markdown_table, method_name, table_rows
from flowcli.io import read_flow
from tests.support import BUILDERS, CROP_H, CROP_W, build_folder, build_kitti, build_middlebury, build_sintel, crop, entry, put_flow, write_image


# ---------------------------------------------------------------------------------------------- fake trees


# ------------------------------------------------------------------------------------------------ oracles


def _key(img1, img2) -> str:
    return hashlib.sha1(np.ascontiguousarray(img1).tobytes() + b"|" + np.ascontiguousarray(img2).tobytes()).hexdigest()


class Oracle:
    """Knows the ground truth of every pair (by the pair's pixels) and returns it plus a per-pair offset.

    ``offsets``: name -> (du, dv); missing names get (0, 0), i.e. the ground truth itself.  A pair it does not know
    (wrong pairing, wrong frame) raises KeyError.
    """

    name = "oracle"

    def __init__(self, expected: dict, offsets: dict | None = None) -> None:
        self.table = {}
        for name, e in expected.items():
            k = _key(e["img1"], e["img2"])
            assert k not in self.table, f"two fake pairs have the same pixels ({name})"
            off = np.asarray((offsets or {}).get(name, (0.0, 0.0)), np.float32)
            self.table[k] = e["gt"] + off
        self.calls = []

    def estimate_batch(self, pairs, *, batch_size=1):
        pairs = list(pairs)
        self.calls.append(len(pairs))
        return [self.table[_key(a, b)].copy() for a, b in pairs]


SCALES = (1.2, 2.2, 0.5)  # offsets (3, 4) * s: EPEs 6, 11 and 2.5 px, away from the 1/3/5 px thresholds


def offsets_for(expected: dict) -> dict:
    return {name: (3.0 * SCALES[k % 3], 4.0 * SCALES[k % 3]) for k, name in enumerate(expected)}


def by_hand(expected: dict, offsets: dict, rule: str) -> dict:
    """The metrics of ``Oracle(expected, offsets)``, computed from the arrays written into the tree."""
    n = e_sum = out = below1 = below3 = below5 = 0
    img_aee, noc_n, noc_sum, occ_n, occ_sum, img_noc, img_occ, out_noc = [], 0, 0.0, 0, 0.0, [], [], 0
    for name, e in expected.items():
        err = math.hypot(*offsets[name])
        v = e["valid"]
        mag = np.hypot(e["gt"][..., 0], e["gt"][..., 1])
        outl = v & (err > 3) & (err > 0.05 * mag)
        k = int(v.sum())
        n += k
        e_sum += err * k
        out += int(outl.sum())
        below1 += k * (err < 1)
        below3 += k * (err < 3)
        below5 += k * (err < 5)
        if k:
            img_aee.append(err)
        if e["occ"] is not None:
            noc, occ = v & ~e["occ"], v & e["occ"]
            noc_n += int(noc.sum())
            noc_sum += err * int(noc.sum())
            occ_n += int(occ.sum())
            occ_sum += err * int(occ.sum())
            out_noc += int((outl & noc).sum())
            if noc.any():
                img_noc.append(err)
            if occ.any():
                img_occ.append(err)
    res = {"images": len(expected), "pixels": n, "fl_all": out / n, "acc1": below1 / n, "acc3": below3 / n,
           "acc5": below5 / n}
    res["aee"] = e_sum / n if rule == "pixel" else float(np.mean(img_aee))
    if noc_n or occ_n:
        res["aee_noc"] = noc_sum / noc_n if rule == "pixel" else float(np.mean(img_noc))
        res["aee_occ"] = occ_sum / occ_n if rule == "pixel" else float(np.mean(img_occ))
        res["fl_noc"] = out_noc / noc_n
    else:
        res.update(aee_noc=None, aee_occ=None, fl_noc=None)
    return res


def assert_close(summary: dict, want: dict) -> None:
    for k, v in want.items():
        if v is None:
            assert summary[k] is None, k
        elif isinstance(v, int):
            assert summary[k] == v, k
        else:
            assert summary[k] == pytest.approx(v, rel=1e-5, abs=1e-6), k


# ------------------------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("dataset", list(BUILDERS))
def test_ground_truth_as_prediction_scores_zero(dataset, tmp_path, real):
    root, expected, kw = BUILDERS[dataset](tmp_path, real)
    ds = open_dataset(dataset, root, **kw)
    assert sorted(p.name for p in ds.pairs) == sorted(expected)  # pair count and names
    res = evaluate(ds, Oracle(expected), batch_size=2)
    assert res.pairs == res.scored == len(expected)
    s = res.summary
    assert s["aee"] == 0.0 and s["fl_all"] == 0.0 and s["acc1"] == 1.0
    assert s["pixels"] == sum(int(e["valid"].sum()) for e in expected.values())  # masks as written
    has_occ = any(e["occ"] is not None for e in expected.values())
    assert (s["aee_noc"] == 0.0) if has_occ else (s["aee_noc"] is None)
    assert [im["name"] for im in res.per_image] == [p.name for p in ds.pairs]


@pytest.mark.parametrize("dataset", list(BUILDERS))
def test_metrics_match_hand_computation(dataset, tmp_path, real):
    root, expected, kw = BUILDERS[dataset](tmp_path, real)
    ds = open_dataset(dataset, root, **kw)
    offsets = offsets_for(expected)
    res = evaluate(ds, Oracle(expected, offsets), batch_size=3)
    rule = "pixel" if ds.metric_kind == "sintel" else "image"
    assert_close(res.summary, by_hand(expected, offsets, rule))
    # each group by the same rule, from the pairs the builder put in it
    for seq, got in res.per_sequence.items():
        members = {n: e for n, e in expected.items() if e["sequence"] == seq}
        assert members, seq
        assert_close(got, by_hand(members, offsets, rule))
    # each image's own numbers
    for im in res.per_image:
        e = expected[im["name"]]
        assert im["pixels"] == int(e["valid"].sum())
        assert im["aee"] == pytest.approx(math.hypot(*offsets[im["name"]]), rel=1e-5)


def test_pixel_and_image_weighting_differ(tmp_path, real):
    """Sintel weighs pixels, KITTI images: with per-pair errors 6/11/2.5 px and unequal valid counts the two
    rules give different AEEs, each equal to its hand-computed value."""
    _, expected, _ = build_kitti(tmp_path, real, "image_2")
    offsets = offsets_for(expected)
    ds = open_dataset("kitti2015", tmp_path)
    res = evaluate(ds, Oracle(expected, offsets))
    errs = [math.hypot(*offsets[n]) for n in expected]
    counts = [int(e["valid"].sum()) for e in expected.values()]
    assert len(set(counts)) > 1
    assert res.summary["aee"] == pytest.approx(float(np.mean(errs)), rel=1e-5)
    pixel_weighted = sum(e * c for e, c in zip(errs, counts)) / sum(counts)
    assert abs(pixel_weighted - res.summary["aee"]) > 0.01


def test_fl_all_on_designed_ground_truth(tmp_path, real):
    """Ground truth of 0 px on the left half and 150 px on the right, prediction = gt + (3, 4): EPE 5 everywhere,
    AEE exactly 5; outliers where 5 > 0.05 |gt|, i.e. the left half only: Fl-all = 0.5; no pixel within 5 px."""
    img1, img2, _, _ = crop(real, "chairs_flownet2_0000000", 0, 0)
    gt = np.zeros((CROP_H, CROP_W, 2), np.float32)
    gt[:, CROP_W // 2:, 0] = 150.0
    write_image(tmp_path / "p" / "img1.png", img1)
    write_image(tmp_path / "p" / "img2.png", img2)
    put_flow(tmp_path / "p" / "gt.flo", gt)
    ds = open_dataset("folder", tmp_path)
    expected = {"p": entry(img1, img2, gt, np.ones((CROP_H, CROP_W), bool))}
    s = evaluate(ds, Oracle(expected, {"p": (3.0, 4.0)})).summary
    assert s["aee"] == 5.0  # 150 + 3 - 150 is exact in float32
    assert s["fl_all"] == 0.5
    assert s["acc1"] == s["acc3"] == s["acc5"] == 0.0


def test_limit_batches_and_on_item(tmp_path, real):
    root, expected, _ = build_sintel(tmp_path, real)
    ds = open_dataset("sintel", root)
    seen = []
    oracle = Oracle(expected)
    res = evaluate(ds, oracle, limit=4, batch_size=3, on_item=seen.append, prefetch=False)
    assert res.pairs == 4 and oracle.calls == [3, 1]
    assert [d["index"] for d in seen] == [0, 1, 2, 3]
    assert seen[0]["name"] == "clean/alley_1/frame_0001" and seen[0]["metrics"]["aee"] == 0.0
    assert seen[0]["written"] is None
    assert res.seconds >= 0 and res.seconds_per_pair == pytest.approx(res.seconds / 4)


def test_sintel_test_split_needs_a_submission_folder(tmp_path, real):
    root, expected, _ = build_sintel(tmp_path / "s", real, split="test")
    ds = open_dataset("sintel", root, "test")
    with pytest.raises(ValueError) as exc:
        evaluate(ds, Oracle(expected))
    msg = str(exc.value)
    assert "\n" not in msg and str(root / "training" / "flow") in msg and "'test'" in msg


def test_sintel_submission_layout(tmp_path, real):
    root, expected, _ = build_sintel(tmp_path / "s", real, split="test")
    ds = open_dataset("sintel", root, "test")
    out = tmp_path / "upload"
    offsets = offsets_for(expected)
    res = evaluate(ds, Oracle(expected, offsets), submission_dir=out)
    assert res.pairs == 6 and res.scored == 0 and res.summary is None
    want = sorted(f"{n}.flo" for n in expected)  # PASS/SCENE/frame_%04d.flo
    assert sorted(res.written) == want
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == want
    flow, valid = read_flow(out / "clean" / "alley_1" / "frame_0001.flo")
    np.testing.assert_array_equal(flow, expected["clean/alley_1/frame_0001"]["gt"] +
                                  np.float32(offsets["clean/alley_1/frame_0001"]))
    assert valid.all()


def test_kitti_submission_layout(tmp_path, real):
    root, expected, _ = build_kitti(tmp_path / "k", real, "image_2", split="testing")
    ds = open_dataset("kitti2015", root, "testing")
    out = tmp_path / "upload"
    res = evaluate(ds, Oracle(expected), submission_dir=out)
    assert sorted(res.written) == ["000000_10.png", "000001_10.png", "000002_10.png"]
    flow, valid = read_flow(out / "000001_10.png")  # 16-bit KITTI PNG, 1/64 px steps
    assert valid.all()
    np.testing.assert_allclose(flow, expected["000001_10"]["gt"], atol=1 / 128)


def test_folder_pair_without_ground_truth(tmp_path, real):
    root, expected, _ = build_folder(tmp_path, real)
    (root / "chairs_b" / "gt.flo").unlink()
    ds = open_dataset("folder", root)
    with pytest.raises(ValueError) as exc:
        evaluate(ds, Oracle(expected))
    assert str(root / "chairs_b" / "gt.flo") in str(exc.value) and "\n" not in str(exc.value)
    # with somewhere to write, the pairs with ground truth are scored and all are written
    res = evaluate(ds, Oracle(expected), submission_dir=tmp_path / "out")
    assert (res.pairs, res.scored) == (3, 2) and res.summary["aee"] == 0.0


def test_middlebury_test_split_error_names_ground_truth_folder(tmp_path, real):
    root, expected, _ = build_middlebury(tmp_path, real)
    (root / "other-data").rename(root / "eval-data")
    ds = open_dataset("middlebury", root, "test")
    with pytest.raises(ValueError, match="other-gt-flow"):
        evaluate(ds, Oracle(expected))


def test_bad_estimator_output(tmp_path, real):
    root, expected, _ = build_folder(tmp_path, real, names=("chairs_a",))
    ds = open_dataset("folder", root)

    class NaNs:
        def estimate_batch(self, pairs, batch_size=1):
            return [np.full((CROP_H, CROP_W, 2), np.nan, np.float32) for _ in pairs]

    class Small:
        def estimate_batch(self, pairs, batch_size=1):
            return [np.zeros((CROP_H // 2, CROP_W // 2, 2), np.float32) for _ in pairs]

    with pytest.raises(RuntimeError, match="non-finite flow for chairs_a"):
        evaluate(ds, NaNs())
    with pytest.raises(RuntimeError, match="shape"):
        evaluate(ds, Small())
    with pytest.raises(ValueError, match="limit"):
        evaluate(ds, Small(), limit=0)


def test_to_dict_is_strict_json(tmp_path, real):
    root, expected, _ = build_sintel(tmp_path, real)
    res = evaluate(open_dataset("sintel", root), Oracle(expected, offsets_for(expected)))
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["dataset"] == "sintel" and d["split"] == "training" and d["method"] == "oracle"
    assert d["pairs"] == 6 and set(d["per_sequence"]) == {"alley_1", "bamboo_2"}
    assert {"aee", "aee_noc", "aee_occ", "acc1", "acc3", "acc5", "fl_all"} <= set(d["summary"])
    assert len(d["per_image"]) == 6


def test_compare_and_tables(tmp_path, real):
    root, expected, _ = build_folder(tmp_path, real, names=("chairs_a", "chairs_b", "kitti15_x", "sintel_clean_a"))
    ds = open_dataset("folder", root)
    offsets = offsets_for(expected)
    results = compare(ds, {"exact": Oracle(expected), "shifted": Oracle(expected, offsets)})
    assert list(results) == ["exact", "shifted"] and all(isinstance(r, EvalResult) for r in results.values())
    assert results["exact"].summary["aee"] == 0.0 and results["shifted"].summary["aee"] > 0
    header, rows = table_rows(results, per_sequence=True)
    assert header[:3] == ["group", "method", "AEE"] and "AEE noc" not in header  # no occlusion masks here
    # whole split first, then each group (chairs, kitti15, sintel_clean) with one row per method
    assert [r[0] for r in rows] == ["folder (all)"] * 2 + ["chairs"] * 2 + ["kitti15"] * 2 + ["sintel_clean"] * 2
    assert rows[0][2] == "0.000" and rows[2][-2] == "2"  # two chairs pairs
    md = markdown_table(results, per_sequence=True)
    lines = md.strip().splitlines()
    assert lines[0].startswith("| group | method | AEE") and len(lines) == 2 + len(rows)
    assert method_name(Oracle({})) == ("oracle", "oracle")
