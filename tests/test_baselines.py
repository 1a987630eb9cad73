"""flowcli.baselines: each OpenCV method recovers a known translation, through the Estimator-like interface."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.baselines import BASELINES, BaselineEstimator, baseline_flow
from tests.support import textured_image

H, W, M = 96, 128, 8  # frame size and margin of the texture the frames are cut from
EDGE = 12  # pixels moving in from outside the frame have no right answer: score the interior


def translated_pair(dx: int, dy: int, seed: int = 7):
    """Two frames of one texture, the second moved by (dx, dy): ``img2[y + dy, x + dx] == img1[y, x]``."""
    big = textured_image(H + 2 * M, W + 2 * M, seed=seed)
    img1 = big[M:M + H, M:M + W]
    img2 = big[M - dy:M - dy + H, M - dx:M - dx + W]
    return np.ascontiguousarray(img1), np.ascontiguousarray(img2)


def interior_aee(flow: np.ndarray, dx: float, dy: float) -> float:
    err = np.hypot(flow[..., 0] - dx, flow[..., 1] - dy)
    return float(err[EDGE:-EDGE, EDGE:-EDGE].mean())


@pytest.mark.parametrize("name", list(BASELINES))
@pytest.mark.parametrize("dx,dy", [(3, -2), (-4, 1)])
def test_recovers_translation(name, dx, dy):
    img1, img2 = translated_pair(dx, dy)
    flow = baseline_flow(name, img1, img2)
    assert flow.shape == (H, W, 2) and flow.dtype == np.float32
    assert interior_aee(flow, dx, dy) < 0.2  # measured: 0.002 to 0.015 px


@pytest.mark.parametrize("name", list(BASELINES))
def test_estimator_interface(name):
    est = BaselineEstimator(name)
    assert est.name == name and est.label == BASELINES[name].label
    a, b = translated_pair(2, 1)
    c, d = translated_pair(-1, 3, seed=9)
    single = est.estimate(a, b)
    np.testing.assert_allclose(single, baseline_flow(name, a, b), atol=1e-5)  # deterministic, same parameters
    flows = est.estimate_batch([(a, b), (c, d)], batch_size=8)
    assert len(flows) == 2 and all(f.shape == (H, W, 2) and f.dtype == np.float32 for f in flows)
    assert interior_aee(flows[1], -1, 3) < 0.2


def test_accepts_gray_and_rgba():
    a, b = translated_pair(2, 0)
    gray1, gray2 = a.mean(axis=2).astype(np.uint8), b.mean(axis=2).astype(np.uint8)
    assert interior_aee(baseline_flow("dis", gray1, gray2), 2, 0) < 0.2
    alpha = np.full((H, W, 1), 255, np.uint8)
    rgba = baseline_flow("farneback", np.concatenate([a, alpha], 2), np.concatenate([b, alpha], 2))
    assert interior_aee(rgba, 2, 0) < 0.2


def test_errors():
    a, _ = translated_pair(0, 0)
    with pytest.raises(ValueError, match="unknown baseline 'tvl1'.*dis, dis-fine, deepflow, farneback"):
        BaselineEstimator("tvl1")
    with pytest.raises(ValueError, match="differ in size: 128x96 vs 64x96"):
        baseline_flow("dis", a, a[:, :64])


def test_dis_fine_is_more_precise_than_the_preset_on_a_sub_pixel_motion():
    """The reason the recipes take DIS matched down to full resolution: on a sub-pixel shift of real texture (the
    example frame, Lanczos-shifted by 0.4 px) its error is well under the medium preset's."""
    import cv2

    from flowcli.io import read_image
    from tests.support import REPO

    img = read_image(REPO / "examples" / "frame_0001.png")
    shift = np.float32([[1, 0, 0.4], [0, 1, 0]])
    moved = cv2.warpAffine(img, shift, (img.shape[1], img.shape[0]), flags=cv2.INTER_LANCZOS4,
                           borderMode=cv2.BORDER_REFLECT)
    err = {name: interior_aee(baseline_flow(name, img, moved), 0.4, 0) for name in ("dis", "dis-fine")}
    assert err["dis-fine"] < 0.7 * err["dis"], err


def test_deepflow_without_contrib(monkeypatch):
    import cv2

    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(RuntimeError, match="deepflow needs opencv-contrib-python"):
        BaselineEstimator("deepflow")
