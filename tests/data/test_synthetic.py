"""Tests of the procedural dataset: format, determinism, and that its ground truth is exact."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from flowcli.data.synthetic import SyntheticFlow
from tests.support import backward_warp, photometric_errors


def test_sample_format():
    ds = SyntheticFlow((96, 128), seed=3, length=5)
    assert len(ds) == 5
    s = ds[2]
    assert s["img1"].shape == (96, 128, 3) and s["img1"].dtype == np.uint8
    assert s["img2"].shape == (96, 128, 3) and s["img2"].dtype == np.uint8
    assert s["flow"].shape == (96, 128, 2) and s["flow"].dtype == np.float32
    assert s["valid"].dtype == bool and s["valid"].all()
    assert s["occ"].shape == (96, 128) and s["occ"].dtype == bool
    assert s["name"] == "synthetic/3/0000002" and s["sequence"] == ""
    assert np.isfinite(s["flow"]).all()
    with pytest.raises(IndexError):
        ds[5]
    assert [x["name"] for x in ds] == [f"synthetic/3/{i:07d}" for i in range(5)]


def test_deterministic_for_seed_and_index():
    a = SyntheticFlow((64, 96), seed=7)
    b = SyntheticFlow((64, 96), seed=7)
    c = SyntheticFlow((64, 96), seed=8)
    for key in ("img1", "img2", "flow", "occ"):
        np.testing.assert_array_equal(a[4][key], b[4][key])
    assert not np.array_equal(a[4]["img1"], a[5]["img1"])
    assert not np.array_equal(a[4]["img1"], c[4]["img1"])


def test_default_size_and_motion_range():
    ds = SyntheticFlow(seed=0)
    s = ds[0]
    assert s["img1"].shape == (320, 448, 3)
    mags = np.concatenate([np.linalg.norm(ds[i]["flow"], axis=2).ravel() for i in range(6)])
    # FlyingChairs-like: mostly up to ~30 px, a tail of larger ones, never absurd.
    assert 3.0 < np.median(mags) < 20.0
    assert np.percentile(mags, 90) < 50.0
    assert mags.max() < 200.0


def test_warping_frame2_by_gt_reproduces_frame1():
    ds = SyntheticFlow(seed=11)
    errs, raws = [], []
    for i in range(4):
        s = ds[i]
        assert 0.0 < s["occ"].mean() < 0.5  # layers do occlude, but most pixels stay visible
        err, raw = photometric_errors(s)
        errs.append(err)
        raws.append(raw)
    assert np.mean(errs) < 3.0, errs
    assert max(errs) < 4.5, errs
    assert np.mean(raws) > 4 * np.mean(errs), (raws, errs)


def test_occlusion_mask_marks_mismatches():
    # On occluded pixels the warped frame 2 shows another surface: far larger errors there.
    s = SyntheticFlow(seed=2)[1]
    warped = backward_warp(s["img2"], s["flow"]).astype(np.float32)
    err = np.abs(warped - s["img1"].astype(np.float32)).mean(axis=2)
    assert s["occ"].sum() > 100
    assert err[s["occ"]].mean() > 3 * err[~s["occ"]].mean()


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        SyntheticFlow((8, 8))
    with pytest.raises(ValueError, match="layers"):
        SyntheticFlow(min_layers=5, max_layers=2)
    with pytest.raises(ValueError, match="seed"):
        SyntheticFlow(seed=-1)


def fake_photos():
    """Two 'photographs' with structure at several scales (no scikit-image needed)."""
    g = np.random.default_rng(5)
    out = []
    for h, w in ((300, 400), (256, 256)):
        coarse = cv2.resize(g.random((h // 16, w // 16, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
        fine = cv2.GaussianBlur(g.random((h, w, 3)).astype(np.float32), (0, 0), 1.0)
        out.append(np.clip((0.7 * coarse + 0.6 * fine) * 255, 0, 255).astype(np.uint8))
    return out


def test_photo_textures_keep_the_ground_truth_exact():
    ds = SyntheticFlow(seed=11, photos=fake_photos(), photo_share=1.0)
    errs, raws = zip(*(photometric_errors(ds[i]) for i in range(4)))
    assert np.mean(errs) < 3.0, errs
    assert np.mean(raws) > 4 * np.mean(errs), (raws, errs)


def test_photo_textures_are_used_and_deterministic():
    flat = [np.full((64, 64, 3), 128, np.uint8)]  # a featureless 'photograph': every surface becomes flat
    photo = SyntheticFlow((96, 128), seed=2, photos=flat, photo_share=1.0)
    plain = SyntheticFlow((96, 128), seed=2)
    # flat surfaces: almost no pixel differs from its right neighbour, unlike the noise textures
    def busy(img):
        return float((np.abs(np.diff(img.astype(int), axis=1)).sum(axis=2) > 3).mean())
    assert busy(photo[0]["img1"]) < 0.2 < busy(plain[0]["img1"])
    np.testing.assert_array_equal(photo[1]["img1"], SyntheticFlow((96, 128), seed=2, photos=flat, photo_share=1.0)[1]["img1"])
    with pytest.raises(ValueError, match="photo_share must be in"):
        SyntheticFlow(seed=0, photo_share=1.5)


def test_large_motion_stage_matches_its_target_histogram():
    """The recipe's large-motion stage trains on FlyingChairs-like motion: the share of pixels per band of true motion
    over its samples (after augmentation and crop) is within 0.1 of the target in every band, with a tail past 100 px."""
    from flowcli.data.synthetic import LARGE_MOTION_TARGET
    from flowcli.train import load_config
    from flowcli.train.data import motion_histogram
    from tests.support import REPO

    cfg = load_config(REPO / "weights" / "train_synthetic.toml")
    stage = next(s for s in cfg.stages if s.large_motion_share)
    cfg = type(cfg)(**{**cfg.__dict__, "photo_textures": 0.0, "stages": [stage]})  # no photographs: the base install
    stage = cfg.stages[0]
    shares, mean = motion_histogram(cfg, type(stage)(**{**stage.__dict__, "photo_textures": 0.0}), 48)
    assert np.all(np.abs(shares - np.array(LARGE_MOTION_TARGET)) < 0.1), shares.round(3)
    assert shares[-1] > 0.01 and 10 < mean < 40
