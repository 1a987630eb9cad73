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


def test_a_pool_naming_a_weight_set_draws_that_networks_flow(tmp_path):
    import json
    import subprocess
    import sys

    import torch

    from flowcli.api import Estimator
    from flowcli.data.synthetic import SyntheticFlow
    from flowcli.model import build_liteflownet
    from flowcli.weights import save_checkpoint

    torch.manual_seed(0)
    main, other = tmp_path / "w.pt", tmp_path / "other.pt"
    save_checkpoint(main, build_liteflownet().state_dict(), {"name": "w"}, half=True)
    save_checkpoint(other, build_liteflownet().state_dict(), {"name": "other"}, half=True)
    recipes = tmp_path / "recipes.json"
    recipes.write_text(json.dumps({"default": {"candidates": ["net@1"]}}))  # the recipe names no weight set
    r = subprocess.run([sys.executable, str(SCRIPT.parent / "set_recipes.py"), str(main), str(recipes),
                        "--weight-set", f"large={other}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sample = SyntheticFlow((64, 96), seed=1, length=1)[0]
    est = train_selector.pool_estimator(str(main), ["net@1", "net@1:large"])
    x, y = train_selector.pair_data(est, sample, ["net@1", "net@1:large"], np.random.default_rng(0), 500)
    assert x.shape[:2] == (500, 2) and y.shape == (500, 2)
    # the weight set's column is the other network's error, not a copy of the main one's
    ref = Estimator(str(other), device="cpu", recipe="plain", precision=est.precision)
    flow = ref.flow_tensor(torch.from_numpy(sample["img1"])[None], torch.from_numpy(sample["img2"])[None])[0]
    values = np.sort(np.log1p(np.hypot(*(flow.numpy() - sample["flow"].transpose(2, 0, 1)))).ravel())

    def in_other_map(col):  # each sampled value is one of the other network's per-pixel errors
        at = np.clip(np.searchsorted(values, col), 1, values.size - 1)
        return np.minimum(abs(values[at] - col), abs(values[at - 1] - col)) < 1e-5

    assert in_other_map(y[:, 1]).all()
    assert in_other_map(y[:, 0]).mean() < 0.5
