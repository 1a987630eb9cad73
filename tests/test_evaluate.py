"""flowcli.evaluate: fake trees in every official layout, built from crops of the real pairs, scored by oracle
estimators whose errors are known, so that pair counts, pairing, masks and every metric can be checked against
numbers computed here by hand."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from flowcli.data.datasets import open_dataset
from flowcli.evaluate import EvalResult, compare, evaluate, markdown_table, method_name, table_rows
from flowcli.io import read_flow, read_image, write_flow
from tests.conftest import put_flow, write_image

H, W = 40, 56  # crops: distinct enough to tell pairs apart, cheap to write and read


# ---------------------------------------------------------------------------------------------- fake trees




def load_real(real_dir: Path) -> dict:
    """folder name -> (img1, img2, flow, valid) of each real pair."""
    out = {}
    for sub in sorted(p for p in Path(real_dir).iterdir() if p.is_dir()):
        gt = next(sub / g for g in ("gt.flo", "gt_flow_kitti.png") if (sub / g).exists())
        out[sub.name] = (read_image(next(sub.glob("img1.*"))), read_image(next(sub.glob("img2.*"))), *read_flow(gt))
    return out


def crop(real: dict, key: str, y: int, x: int, h: int = H, w: int = W):
    """(img1, img2, flow, valid) of a real pair cropped at (y, x); flow zeroed where not valid."""
    a, b, f, v = real[key]
    c = (slice(y, y + h), slice(x, x + w))
    flow = np.ascontiguousarray(f[c])
    valid = np.ascontiguousarray(v[c])
    flow[~valid] = 0.0
    return np.ascontiguousarray(a[c]), np.ascontiguousarray(b[c]), flow, valid


def entry(img1, img2, gt, valid, occ=None, sequence=""):
    return {"img1": img1, "img2": img2, "gt": gt, "valid": valid, "occ": occ, "sequence": sequence}


def build_sintel(root: Path, real: dict, split: str = "training"):
    """Two scenes (3 and 2 frames), both passes, flow + occlusions (top rows) + invalid (left columns)."""
    expected = {}
    for s_idx, (scene, nframes) in enumerate((("alley_1", 3), ("bamboo_2", 2))):
        gts = [crop(real, "sintel_clean_alley_1_0001", 100 + 60 * s_idx + 9 * i, 300 + 13 * i)[2:]
               for i in range(1, nframes)]
        for pas in ("clean", "final"):
            key = f"sintel_{pas}_alley_1_0001"
            imgs = [crop(real, key, 30 + 80 * s_idx + 11 * i, 40 + 17 * i)[i % 2] for i in range(nframes)]
            for i, img in enumerate(imgs, start=1):
                write_image(root / split / pas / scene / f"frame_{i:04d}.png", img)
            for i in range(1, nframes):
                gt, _ = gts[i - 1]
                occ = np.zeros((H, W), bool)
                occ[: 6 + 2 * i] = True
                valid = np.ones((H, W), bool)
                valid[:, : 3 + i] = False
                expected[f"{pas}/{scene}/frame_{i:04d}"] = entry(imgs[i - 1], imgs[i], gt, valid, occ, scene)
        if split == "training":
            for i in range(1, nframes):
                gt, _ = gts[i - 1]
                e = expected[f"clean/{scene}/frame_{i:04d}"]
                put_flow(root / "training" / "flow" / scene / f"frame_{i:04d}.flo", gt)
                write_image(root / "training" / "occlusions" / scene / f"frame_{i:04d}.png",
                            np.repeat((e["occ"] * 255).astype(np.uint8)[..., None], 3, axis=2))
                write_image(root / "training" / "invalid" / scene / f"frame_{i:04d}.png",
                            np.repeat((~e["valid"] * 255).astype(np.uint8)[..., None], 3, axis=2))
    return root, expected, {}


def build_kitti(root: Path, real: dict, image_dir: str, split: str = "training"):
    """Three pairs; sparse ground truth from the real KITTI pair; flow_noc drops the top rows (= occluded)."""
    expected = {}
    for i in range(3):
        img1, img2, flow, valid = crop(real, "kitti15_000000", 240 + 20 * i, 200 + 150 * i)
        assert valid.sum() > 100  # the crop must hold some of KITTI's sparse ground truth
        name = f"{i:06d}_10"
        write_image(root / split / image_dir / f"{name}.png", img1)
        write_image(root / split / image_dir / f"{i:06d}_11.png", img2)
        noc = valid.copy()
        noc[: 5 + 3 * i] = False
        if split == "training":
            put_flow(root / "training" / "flow_occ" / f"{name}.png", flow, valid)
            put_flow(root / "training" / "flow_noc" / f"{name}.png", flow, noc)
        expected[name] = entry(img1, img2, flow, valid, valid & ~noc)
    return root, expected, {}


def build_chairs(root: Path, real: dict):
    """Three pairs with split labels 1 2 1: the train split holds the first and the third."""
    expected = {}
    for i in range(3):
        img1, img2, flow, valid = crop(real, f"chairs_flownet2_000000{i}", 50 + 30 * i, 60 + 40 * i)
        stem = f"{i + 1:05d}"
        write_image(root / "data" / f"{stem}_img1.ppm", img1)
        write_image(root / "data" / f"{stem}_img2.ppm", img2)
        put_flow(root / "data" / f"{stem}_flow.flo", flow)
        if i != 1:
            expected[stem] = entry(img1, img2, flow, valid)
    (root / "FlyingChairs_train_val.txt").write_text("1\n2\n1\n")
    return root, expected, {"split": "train"}


def build_middlebury(root: Path, real: dict):
    expected = {}
    for i, scene in enumerate(("Hydrangea", "RubberWhale")):
        img1, img2, flow, valid = crop(real, "middlebury_RubberWhale", 20 + 100 * i, 30 + 200 * i)
        write_image(root / "other-data" / scene / "frame10.png", img1)
        write_image(root / "other-data" / scene / "frame11.png", img2)
        put_flow(root / "other-gt-flow" / scene / "flow10.flo", flow, valid)
        expected[scene] = entry(img1, img2, flow, valid, sequence=scene)
    return root, expected, {}


def build_things(root: Path, real: dict):
    """One sequence (frames 6, 7, 8), both passes, left camera, PFM ground truth."""
    expected = {}
    seq = "TRAIN/A/0000"
    gts = [crop(real, "chairs_flownet2_0000001", 100 + 20 * k, 100 + 30 * k)[2] for k in range(2)]
    for pas in ("clean", "final"):
        imgs = [crop(real, f"sintel_{pas}_alley_1_0001", 200 + 10 * k, 500 + 20 * k)[k % 2] for k in range(3)]
        for k, img in enumerate(imgs):
            write_image(root / f"frames_{pas}pass" / seq / "left" / f"{6 + k:04d}.png", img)
        for k in range(2):
            expected[f"{pas}/{seq}/left/{6 + k:04d}"] = entry(imgs[k], imgs[k + 1], gts[k], np.ones((H, W), bool),
                                                               sequence=seq)
    for k in range(2):
        put_flow(root / "optical_flow" / seq / "into_future" / "left" / f"OpticalFlowIntoFuture_{6 + k:04d}_L.pfm",
                 gts[k])
    return root, expected, {}


def build_folder(root: Path, real: dict, names=("chairs_a", "chairs_b", "kitti15_x"), h: int = H, w: int = W):
    """One subfolder per pair (two .flo, one KITTI PNG with sparse ground truth)."""
    expected = {}
    sources = {"chairs_a": ("chairs_flownet2_0000000", 10, 10), "chairs_b": ("chairs_flownet2_0000002", 90, 200),
               "kitti15_x": ("kitti15_000000", 250, 400), "sintel_clean_a": ("sintel_clean_alley_1_0001", 50, 50),
               "sintel_final_a": ("sintel_final_alley_1_0001", 50, 50)}
    for name in names:
        key, y, x = sources[name]
        img1, img2, flow, valid = crop(real, key, y, x, h, w)
        write_image(root / name / "img1.png", img1)
        write_image(root / name / "img2.png", img2)
        if key.startswith("kitti"):
            put_flow(root / name / "gt_flow_kitti.png", flow, valid)
        else:
            put_flow(root / name / "gt.flo", flow, valid)
        expected[name] = entry(img1, img2, flow, valid, sequence=name.split("_")[0] if "sintel" not in name
                               else "_".join(name.split("_")[:2]))
    return root, expected, {}


BUILDERS = {
    "sintel": build_sintel,
    "kitti2012": lambda root, real: build_kitti(root, real, "colored_0"),
    "kitti2015": lambda root, real: build_kitti(root, real, "image_2"),
    "chairs": build_chairs,
    "middlebury": build_middlebury,
    "things": build_things,
    "folder": build_folder,
}


@pytest.fixture(scope="module")
def real(real_dir):
    return load_real(real_dir)


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
    gt = np.zeros((H, W, 2), np.float32)
    gt[:, W // 2:, 0] = 150.0
    write_image(tmp_path / "p" / "img1.png", img1)
    write_image(tmp_path / "p" / "img2.png", img2)
    put_flow(tmp_path / "p" / "gt.flo", gt)
    ds = open_dataset("folder", tmp_path)
    expected = {"p": entry(img1, img2, gt, np.ones((H, W), bool))}
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
            return [np.full((H, W, 2), np.nan, np.float32) for _ in pairs]

    class Small:
        def estimate_batch(self, pairs, batch_size=1):
            return [np.zeros((H // 2, W // 2, 2), np.float32) for _ in pairs]

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
