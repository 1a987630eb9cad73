"""The real ground truth in ../shared/data/real reads with the right sizes and valid counts."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from flowcli.io import read_flow, read_image

# folder -> (width, height) of gt and images
FLO_PAIRS = {
    "sintel_clean_alley_1_0001": (1024, 436),
    "sintel_final_alley_1_0001": (1024, 436),
    "chairs_flownet2_0000000": (512, 384),
    "chairs_flownet2_0000001": (512, 384),
    "chairs_flownet2_0000002": (512, 384),
    "middlebury_RubberWhale": (584, 388),
}


def first(folder, stem):
    (path,) = [p for p in folder.iterdir() if p.stem == stem]
    return path


@pytest.mark.parametrize("name", sorted(FLO_PAIRS))
def test_flo_ground_truth(real_dir, name):
    w, h = FLO_PAIRS[name]
    path = real_dir / name / "gt.flo"
    flow, valid = read_flow(path)
    assert flow.shape == (h, w, 2) and flow.dtype == np.float32
    assert valid.shape == (h, w)
    # Independent count straight from the bytes: a pixel is known when both |u|, |v| <= 1e9.
    raw = np.fromfile(path, dtype="<f4")
    assert raw[0] == np.float32(202021.25)
    assert tuple(raw[1:3].view("<i4")) == (w, h)
    uv = raw[3:].reshape(h, w, 2)
    known = (np.abs(uv) <= 1e9).all(axis=2)
    assert int(valid.sum()) == int(known.sum())
    np.testing.assert_array_equal(flow[known], uv[known])
    assert np.isfinite(flow).all()
    for stem in ("img1", "img2"):
        assert read_image(first(real_dir / name, stem)).shape == (h, w, 3)


def test_middlebury_has_unknown_pixels(real_dir):
    _, valid = read_flow(real_dir / "middlebury_RubberWhale" / "gt.flo")
    assert 0 < int((~valid).sum()) < valid.size // 10


def test_kitti_ground_truth(real_dir):
    path = real_dir / "kitti15_000000" / "gt_flow_kitti.png"
    flow, valid = read_flow(path)
    assert flow.shape == (375, 1242, 2) and valid.shape == (375, 1242)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # BGR: index 0 is the file's third (B) channel
    expected = np.count_nonzero(raw[:, :, 0])
    assert int(valid.sum()) == expected
    assert 0 < expected < valid.size  # sparse
    u = (raw[:, :, 2].astype(np.float64) - 2**15) / 64
    np.testing.assert_array_equal(flow[:, :, 0][valid], u[valid].astype(np.float32))
    assert (flow[~valid] == 0).all()
    assert read_image(real_dir / "kitti15_000000" / "img1.png").shape == (375, 1242, 3)
