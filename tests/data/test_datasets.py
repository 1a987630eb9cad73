"""Tests of the dataset readers on small fake trees in each official layout, built from the real pairs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flowcli.data.datasets import (
    DATASETS,
    FlyingChairs,
    FlyingThings3D,
    FolderPairs,
    Kitti2012,
    Kitti2015,
    Middlebury,
    Sintel,
    folder_group,
    open_dataset,
    submission_path,
    write_submission,
)
from flowcli.io import read_flow
from flowcli.io.image import read_image
from tests.support import put_flow, write_image



H, W = 40, 56  # crops of the real pairs: enough to tell frames apart, cheap to write and read


@pytest.fixture(scope="module")
def crops(real_dir):
    """name -> (img1, img2, flow, valid), cropped from the real pairs at different offsets."""
    out = {}
    for sub in sorted(p for p in Path(real_dir).iterdir() if p.is_dir()):
        img1 = read_image(next(sub.glob("img1.*")))
        img2 = read_image(next(sub.glob("img2.*")))
        gt = next((sub / g for g in ("gt.flo", "gt_flow_kitti.png") if (sub / g).exists()))
        flow, valid = read_flow(gt)
        out[sub.name] = (img1, img2, flow, valid)
    return out


def frames(crops, n):
    """``n`` distinct HxWx3 frames (crops at different places of different real images)."""
    res = []
    keys = sorted(crops)
    for i in range(n):
        img = crops[keys[i % len(keys)]][i % 2]
        y, x = 7 * i % (img.shape[0] - H), 11 * i % (img.shape[1] - W)
        res.append(np.ascontiguousarray(img[y:y + H, x:x + W]))
    return res


def a_flow(seed, sparse=False):
    g = np.random.default_rng(seed)
    flow = g.normal(0, 4, (H, W, 2)).astype(np.float32)
    valid = g.random((H, W)) < 0.4 if sparse else np.ones((H, W), bool)
    return np.round(flow * 64) / 64, valid  # exactly representable in KITTI PNGs


def assert_one_line(exc: pytest.ExceptionInfo, *parts: str):
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for part in parts:
        assert str(part) in msg, msg


def same(a, b):
    return a.shape == b.shape and np.array_equal(a, b)


# ------------------------------------------------------------------------------------------ Sintel


@pytest.fixture
def sintel_root(tmp_path, crops):
    imgs = frames(crops, 5)
    scenes = {"alley_1": imgs[:3], "bamboo_2": imgs[3:5]}
    for pas in ("clean", "final"):
        for scene, fr in scenes.items():
            for i, img in enumerate(fr, start=1):
                shown = img if pas == "clean" else 255 - img  # the passes must differ
                write_image(tmp_path / "training" / pas / scene / f"frame_{i:04d}.png", shown)
                write_image(tmp_path / "test" / pas / scene / f"frame_{i:04d}.png", img)
    for scene, fr in scenes.items():
        for i in range(1, len(fr)):
            flow, _ = a_flow(i)
            put_flow(tmp_path / "training" / "flow" / scene / f"frame_{i:04d}.flo", flow)
            occ = np.zeros((H, W, 3), np.uint8)
            occ[:10] = 255  # top rows occluded
            inv = np.zeros((H, W, 3), np.uint8)
            inv[:, :5] = 255  # left columns invalid
            write_image(tmp_path / "training" / "occlusions" / scene / f"frame_{i:04d}.png", occ)
            write_image(tmp_path / "training" / "invalid" / scene / f"frame_{i:04d}.png", inv)
    return tmp_path, scenes


def test_sintel_pairs_masks_and_names(sintel_root):
    root, scenes = sintel_root
    ds = Sintel(root)
    assert len(ds) == 2 * (2 + 1) and ds.has_gt and ds.metric_kind == "sintel"
    names = [p.name for p in ds.pairs]
    assert names[:3] == ["clean/alley_1/frame_0001", "clean/alley_1/frame_0002", "clean/bamboo_2/frame_0001"]
    assert names[3] == "final/alley_1/frame_0001"
    s = ds[1]
    assert same(s["img1"], scenes["alley_1"][1]) and same(s["img2"], scenes["alley_1"][2])
    assert s["sequence"] == "alley_1" and s["name"] == "clean/alley_1/frame_0002"
    np.testing.assert_array_equal(s["flow"], a_flow(2)[0])
    assert s["occ"][:10].all() and not s["occ"][10:].any()
    assert not s["valid"][:, :5].any() and s["valid"][:, 5:].all()
    assert same(ds[3]["img1"], 255 - scenes["alley_1"][0])  # final pass
    assert len(Sintel(root, passes="final")) == 3
    test = Sintel(root, "test")
    assert len(test) == 6 and not test.has_gt
    t = test[0]
    assert t["flow"] is None and t["valid"] is None and t["occ"] is None
    assert submission_path(test, t) == "clean/alley_1/frame_0001.flo"
    assert submission_path("sintel", ds[4]) == "final/alley_1/frame_0002.flo"


def test_sintel_errors(sintel_root, tmp_path):
    root, _ = sintel_root
    with pytest.raises(FileNotFoundError) as e:
        Sintel(root / "nowhere")
    assert_one_line(e, root / "nowhere" / "training" / "clean", "MPI-Sintel layout")
    with pytest.raises(FileNotFoundError) as e:
        Sintel(root / "training")  # one level too deep
    assert_one_line(e, root / "training" / "training" / "clean")
    (root / "training" / "flow" / "alley_1" / "frame_0002.flo").unlink()
    with pytest.raises(FileNotFoundError) as e:
        Sintel(root)
    assert_one_line(e, root / "training" / "flow" / "alley_1" / "frame_0002.flo")
    with pytest.raises(ValueError) as e:
        Sintel(root, "validation")
    assert_one_line(e, "validation")
    with pytest.raises(ValueError):
        Sintel(root, passes="albedo")


def test_sintel_without_optional_masks(sintel_root):
    root, _ = sintel_root
    import shutil

    shutil.rmtree(root / "training" / "occlusions")
    shutil.rmtree(root / "training" / "invalid")
    s = Sintel(root, passes="clean")[0]
    assert s["occ"] is None and s["valid"].all()


# ------------------------------------------------------------------------------------------- KITTI


def _kitti_tree(root: Path, crops, image_dir: str, with_noc: bool = True):
    imgs = frames(crops, 4)
    for split in ("training", "testing"):
        for i in range(2):
            write_image(root / split / image_dir / f"{i:06d}_10.png", imgs[2 * i])
            write_image(root / split / image_dir / f"{i:06d}_11.png", imgs[2 * i + 1])
    for i in range(2):
        flow, valid = a_flow(10 + i, sparse=True)
        put_flow(root / "training" / "flow_occ" / f"{i:06d}_10.png", flow, valid)
        if with_noc:
            noc = valid.copy()
            noc[:, : W // 2] = False  # left half: valid in flow_occ only, i.e. occluded
            put_flow(root / "training" / "flow_noc" / f"{i:06d}_10.png", flow, noc)
    return imgs


@pytest.mark.parametrize("cls,image_dir", [(Kitti2015, "image_2"), (Kitti2012, "colored_0")])
def test_kitti_pairs_and_occlusion(tmp_path, crops, cls, image_dir):
    imgs = _kitti_tree(tmp_path, crops, image_dir)
    ds = cls(tmp_path)
    assert len(ds) == 2 and ds.has_gt and ds.metric_kind == "kitti"
    s = ds[1]
    assert s["name"] == "000001_10" and s["sequence"] == ""
    assert same(s["img1"], imgs[2]) and same(s["img2"], imgs[3])
    flow, valid = a_flow(11, sparse=True)
    np.testing.assert_array_equal(s["valid"], valid)
    np.testing.assert_array_equal(s["flow"][valid], flow[valid])
    expected_occ = valid.copy()
    expected_occ[:, W // 2:] = False
    np.testing.assert_array_equal(s["occ"], expected_occ)
    test = cls(tmp_path, "testing")
    assert len(test) == 2 and not test.has_gt and test[0]["flow"] is None
    assert submission_path(test, test[0]) == "000000_10.png"
    assert submission_path(cls.name, s) == "000001_10.png"


def test_kitti_errors(tmp_path, crops):
    _kitti_tree(tmp_path, crops, "image_2", with_noc=False)
    assert Kitti2015(tmp_path)[0]["occ"] is None  # no flow_noc: no occlusion mask
    with pytest.raises(FileNotFoundError) as e:
        Kitti2012(tmp_path)  # a KITTI 2015 tree
    assert_one_line(e, tmp_path / "training" / "colored_0", "KITTI 2012 layout")
    (tmp_path / "training" / "image_2" / "000001_11.png").unlink()
    with pytest.raises(FileNotFoundError) as e:
        Kitti2015(tmp_path)
    assert_one_line(e, tmp_path / "training" / "image_2" / "000001_11.png")
    for f in (tmp_path / "training" / "flow_occ").iterdir():
        f.unlink()
    (tmp_path / "training" / "flow_occ").rmdir()
    with pytest.raises(FileNotFoundError) as e:
        Kitti2015(tmp_path)
    assert_one_line(e, tmp_path / "training" / "flow_occ")


# ------------------------------------------------------------------------------------ FlyingChairs


def _chairs_tree(root: Path, crops, labels="1\n2\n1\n1\n"):
    imgs = frames(crops, 8)
    data = root / "data"
    for i in range(4):
        write_image(data / f"{i + 1:05d}_img1.ppm", imgs[2 * i])
        write_image(data / f"{i + 1:05d}_img2.ppm", imgs[2 * i + 1])
        put_flow(data / f"{i + 1:05d}_flow.flo", a_flow(20 + i)[0])
    if labels is not None:
        (root / "FlyingChairs_train_val.txt").write_text(labels)
    return imgs


def test_chairs_splits_and_pairing(tmp_path, crops):
    imgs = _chairs_tree(tmp_path, crops)
    train, val = FlyingChairs(tmp_path), FlyingChairs(tmp_path, "val")
    assert [p.name for p in train.pairs] == ["00001", "00003", "00004"]
    assert [p.name for p in val.pairs] == ["00002"]
    assert len(FlyingChairs(tmp_path, "all")) == 4
    assert len(FlyingChairs(tmp_path / "data", "all")) == 4  # the data folder itself
    s = val[0]
    assert same(s["img1"], imgs[2]) and same(s["img2"], imgs[3])
    np.testing.assert_array_equal(s["flow"], a_flow(21)[0])
    assert s["valid"].all() and s["occ"] is None
    assert open_dataset("chairs", tmp_path, "val").pairs[0].name == "00002"


def test_chairs_errors(tmp_path, crops):
    _chairs_tree(tmp_path, crops, labels=None)
    with pytest.raises(FileNotFoundError) as e:
        FlyingChairs(tmp_path, "train")
    assert_one_line(e, tmp_path / "FlyingChairs_train_val.txt")
    (tmp_path / "FlyingChairs_train_val.txt").write_text("1\n2\n")
    with pytest.raises(ValueError) as e:
        FlyingChairs(tmp_path)
    assert_one_line(e, "2 entries", "4 pairs")
    (tmp_path / "data" / "00003_flow.flo").unlink()
    with pytest.raises(FileNotFoundError) as e:
        FlyingChairs(tmp_path, "all")
    assert_one_line(e, tmp_path / "data" / "00003_flow.flo")
    with pytest.raises(FileNotFoundError) as e:
        FlyingChairs(tmp_path / "missing")
    assert_one_line(e, tmp_path / "missing" / "data", "FlyingChairs layout")


# -------------------------------------------------------------------------------------- Middlebury


def test_middlebury(tmp_path, crops):
    imgs = frames(crops, 6)
    for k, scene in enumerate(("Dimetrodon", "RubberWhale", "Beanbags")):
        write_image(tmp_path / "other-data" / scene / "frame10.png", imgs[2 * k])
        write_image(tmp_path / "other-data" / scene / "frame11.png", imgs[2 * k + 1])
        write_image(tmp_path / "eval-data" / scene / "frame10.png", imgs[2 * k])
        write_image(tmp_path / "eval-data" / scene / "frame11.png", imgs[2 * k + 1])
    for k, scene in enumerate(("Dimetrodon", "RubberWhale")):  # Beanbags has no public GT
        flow, _ = a_flow(30 + k)
        flow[0, 0] = np.nan  # unknown
        put_flow(tmp_path / "other-gt-flow" / scene / "flow10.flo", flow)
    ds = Middlebury(tmp_path)
    assert [p.name for p in ds.pairs] == ["Dimetrodon", "RubberWhale"] and ds.metric_kind == "kitti"
    s = ds[1]
    assert s["sequence"] == "RubberWhale"
    assert same(s["img1"], imgs[2]) and same(s["img2"], imgs[3])
    assert not s["valid"][0, 0] and s["valid"].sum() == H * W - 1
    test = Middlebury(tmp_path, "test")
    assert len(test) == 3 and not test.has_gt
    import shutil

    shutil.rmtree(tmp_path / "other-gt-flow")
    with pytest.raises(FileNotFoundError) as e:
        Middlebury(tmp_path)
    assert_one_line(e, tmp_path / "other-gt-flow", "Middlebury layout")


# --------------------------------------------------------------------------------- FlyingThings3D


def test_things(tmp_path, crops):
    imgs = frames(crops, 3)
    for pas in ("clean", "final"):
        for n, img in zip((6, 7, 8), imgs):
            write_image(tmp_path / f"frames_{pas}pass" / "TRAIN" / "A" / "0000" / "left" / f"{n:04d}.png", img)
    fdir = tmp_path / "optical_flow" / "TRAIN" / "A" / "0000" / "into_future" / "left"
    for n in (6, 7, 8):
        flow, _ = a_flow(40 + n)
        if n == 7:
            flow[3, 4] = (2000.0, 0.0)  # a corrupt vector of the kind the release has
        put_flow(fdir / f"OpticalFlowIntoFuture_{n:04d}_L.pfm", flow)
    ds = FlyingThings3D(tmp_path)
    assert len(ds) == 4 and ds.has_gt
    assert ds.pairs[1].name == "clean/TRAIN/A/0000/left/0007"
    s = ds[1]
    assert s["sequence"] == "TRAIN/A/0000"
    assert same(s["img1"], imgs[1]) and same(s["img2"], imgs[2])
    assert not s["valid"][3, 4] and s["valid"].sum() == H * W - 1
    np.testing.assert_array_equal(ds[0]["flow"], a_flow(46)[0])
    assert len(open_dataset("things", tmp_path, "train", passes="final")) == 2
    (fdir / "OpticalFlowIntoFuture_0007_L.pfm").unlink()
    with pytest.raises(FileNotFoundError) as e:
        FlyingThings3D(tmp_path)
    assert_one_line(e, fdir / "OpticalFlowIntoFuture_0007_L.pfm")
    with pytest.raises(FileNotFoundError) as e:
        FlyingThings3D(tmp_path, "test")
    assert_one_line(e, tmp_path / "optical_flow" / "TEST", "FlyingThings3D layout")


# ------------------------------------------------------------------------------------------ folder


def test_folder_on_the_real_pairs(real_dir):
    ds = open_dataset("folder", real_dir)
    assert isinstance(ds, FolderPairs) and ds.has_gt and ds.metric_kind == "kitti"
    names = [p.name for p in ds.pairs]
    assert names == sorted(names) and len(names) == 7
    groups = {p.name: p.sequence for p in ds.pairs}
    assert groups["sintel_final_alley_1_0001"] == "sintel_final"
    assert groups["kitti15_000000"] == "kitti15"
    k = ds[names.index("kitti15_000000")]
    assert k["img1"].shape == (375, 1242, 3) and k["flow"].shape == (375, 1242, 2)
    assert 0.05 < k["valid"].mean() < 0.9  # sparse KITTI ground truth
    assert k["occ"] is None


def test_folder_single_pair_missing_gt_and_errors(tmp_path, crops):
    imgs = frames(crops, 2)
    one = tmp_path / "one"
    write_image(one / "img1.png", imgs[0])
    write_image(one / "img2.jpg", imgs[1])
    ds = FolderPairs(one)  # a pair folder itself
    assert len(ds) == 1 and not ds.has_gt and ds[0]["flow"] is None and ds[0]["name"] == "one"
    assert same(ds[0]["img1"], imgs[0])
    (tmp_path / "notes").mkdir()  # unrelated subfolders are ignored
    assert len(FolderPairs(tmp_path)) == 1
    with pytest.raises(FileNotFoundError) as e:
        FolderPairs(tmp_path / "notes")
    assert_one_line(e, tmp_path / "notes" / "PAIR" / "img1.png")
    (one / "img2.jpg").unlink()
    with pytest.raises(FileNotFoundError) as e:
        FolderPairs(tmp_path)
    assert_one_line(e, one / "img2.png")
    with pytest.raises(ValueError):
        FolderPairs(tmp_path, "train")


def test_folder_group():
    assert folder_group("chairs_flownet2_0000001") == "chairs"
    assert folder_group("sintel_clean_alley_1_0001") == "sintel_clean"
    assert folder_group("sintel_final_alley_1_0001") == "sintel_final"
    assert folder_group("kitti15_000000") == "kitti15"
    assert folder_group("middlebury_RubberWhale") == "middlebury"
    assert folder_group("plain") == "plain"


# ------------------------------------------------------------------------------ registry and misc


def test_registry_and_open_dataset(tmp_path):
    assert set(DATASETS) == {"sintel", "kitti2012", "kitti2015", "chairs", "middlebury", "things", "folder"}
    for cls in DATASETS.values():
        assert cls.metric_kind in ("sintel", "kitti")
    with pytest.raises(ValueError) as e:
        open_dataset("imagenet", tmp_path)
    assert_one_line(e, "imagenet", "sintel")


def test_index_errors_and_write_submission(tmp_path, real_dir):
    ds = FolderPairs(real_dir)
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert ds[-1]["name"] == ds.pairs[-1].name
    sample = {"name": "final/alley_1/frame_0001"}
    flow = a_flow(1)[0]
    path = write_submission(tmp_path, "sintel", sample, flow)
    assert path == tmp_path / "final" / "alley_1" / "frame_0001.flo"
    np.testing.assert_array_equal(read_flow(path)[0], flow)
    path = write_submission(tmp_path, "kitti2015", {"name": "000003_10"}, flow)
    assert path.name == "000003_10.png"
    np.testing.assert_array_equal(read_flow(path)[0], flow)
