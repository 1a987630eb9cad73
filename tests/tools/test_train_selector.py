"""tools/train_selector.py: the degradations its synthetic pairs get."""
import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "train_selector.py"
spec = importlib.util.spec_from_file_location("train_selector", SCRIPT)
train_selector = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train_selector)


def test_motion_blur_spreads_each_pixel_along_its_own_motion_only():
    img = np.zeros((20, 40, 3), np.float32)
    img[:, 20] = 90.0
    flow = np.zeros((20, 40, 2), np.float32)
    flow[:10, :, 0] = 8.0  # the top half moves 8 px right, the bottom half stays
    out = train_selector.motion_blur(img, flow, exposure=1.0)
    top, bottom = out[5, :, 0], out[15, :, 0]
    np.testing.assert_allclose(top[16:25], 10.0, atol=1e-4)  # 9 taps over 8 px: a 9 px streak of a ninth each
    assert top[:16].max() == 0 and top[25:].max() == 0
    np.testing.assert_allclose(bottom, img[15, :, 0], atol=1e-5)  # no motion, no blur
    np.testing.assert_allclose(train_selector.motion_blur(img, flow, exposure=0.0), img, atol=1e-5)
