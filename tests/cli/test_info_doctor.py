"""flowcli info and flowcli doctor."""
from __future__ import annotations

import json

import numpy as np
import pytest

from flowcli import __version__
from flowcli.io import write_flow, write_image
from tests.support import H, W, one_error_line, textured_image


def test_info_with_bundled_weights(invoke, bundled):
    r = invoke("info")
    assert r.exit_code == 0, r.stderr
    assert f"flowcli {__version__}" in r.stderr and "torch" in r.stderr
    assert "test-random" in r.stderr
    assert r.stdout == ""


def test_info_json_without_weights(invoke, no_bundled):
    r = invoke("info", "--json")
    assert r.exit_code == 1  # it loaded nothing
    assert "no bundled weights" in one_error_line(r)
    data = json.loads(r.stdout)
    assert data["flowcli"] == __version__ and data["device"] == "cpu"
    assert data["weights"]["available"] is False and "no bundled weights" in data["weights"]["error"]


def small_examples(folder):
    """An example pair like examples/ but 64x96, with its true flow (1 px to the right)."""
    folder.mkdir()
    img = textured_image(H, W + 1, seed=9)
    write_image(folder / "frame_0001.png", img[:, 1:])
    write_image(folder / "frame_0002.png", img[:, :-1])
    flow = np.zeros((H, W, 2), np.float32)
    flow[..., 0] = 1.0
    write_flow(folder / "frame_0001_true.flo", flow)
    return folder


def test_doctor_ok(invoke, tmp_path):
    """Trained weights (the bundled ones) on a pair moving 1 px: an AEE far below the 1 px doctor allows."""
    ex = small_examples(tmp_path / "ex")
    r = invoke("doctor", "--examples", ex, "--recipe", "plain", "--json")
    if r.exit_code == 1 and "no bundled weights" in r.stderr:
        pytest.skip("no bundled weights in this checkout")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["ok"] is True and data["size"] == [W, H]
    assert data["aee_px"] < 0.5 and data["zero_flow_aee_px"] == 1.0 and data["max_aee_px"] == 1.0
    assert data["seconds_per_pair"] > 0
    assert "AEE" in r.stderr and "all checks passed" in r.stderr


def test_doctor_fails_on_finite_but_wrong_flow(invoke, tmp_path, weights_file, monkeypatch):
    """Untrained weights give finite flow of the right shape, 6-7 px off here: doctor fails on the accuracy it
    states (1 px), and passes flow within it."""
    from flowcli.api import Estimator
    from flowcli.jobs.health import MAX_EXAMPLE_AEE

    assert MAX_EXAMPLE_AEE == 1.0
    ex = small_examples(tmp_path / "ex")
    r = invoke("doctor", "--examples", ex, "--weights", weights_file, "--json")
    assert r.exit_code == 1
    data = json.loads(r.stdout)
    assert data["ok"] is False and data["aee_px"] > 1.0
    failed = [c for c in data["checks"] if c["status"] == "fail"]
    assert [c["check"] for c in failed] == ["accuracy"] and "above the 1 px" in failed[0]["detail"]
    assert r.stderr.strip().splitlines()[-1] == "error: doctor found a problem: accuracy"
    # the bound itself: the true flow off by 1.2 px fails, off by 0.8 px passes
    for offset, code in ((1.2, 1), (0.8, 0)):
        def off(self, a, b, offset=offset):
            flow = np.zeros((H, W, 2), np.float32)
            flow[..., 0] = 1.0 + offset
            return flow

        monkeypatch.setattr(Estimator, "estimate", off)
        r = invoke("doctor", "--examples", ex, "--weights", weights_file, "--json")
        assert r.exit_code == code, r.stderr
        assert json.loads(r.stdout)["aee_px"] == pytest.approx(offset, abs=1e-4)


def test_doctor_without_bundled_weights(invoke, tmp_path, no_bundled):
    ex = small_examples(tmp_path / "ex")
    r = invoke("doctor", "--examples", ex)
    assert r.exit_code == 1
    assert "no bundled weights" in r.stderr
    assert "weights" in r.stderr.strip().splitlines()[-1]


def test_doctor_missing_example_files(invoke, tmp_path, weights_file):
    ex = small_examples(tmp_path / "ex")
    (ex / "frame_0001_true.flo").unlink()
    r = invoke("doctor", "--examples", ex, "--weights", weights_file)
    assert r.exit_code == 1
    assert "frame_0001_true.flo" in r.stderr


def test_doctor_non_finite_flow(invoke, tmp_path, weights_file, monkeypatch):
    from flowcli.api import Estimator

    ex = small_examples(tmp_path / "ex")
    monkeypatch.setattr(Estimator, "estimate", lambda self, a, b: np.full((H, W, 2), np.nan, np.float32))
    r = invoke("doctor", "--examples", ex, "--weights", weights_file)
    assert r.exit_code == 1
    assert "non-finite" in r.stderr


def test_repository_examples_are_complete(invoke):
    """The files doctor and the README rely on exist and read back."""
    from flowcli.jobs.health import EXAMPLE_FILES, examples_dir
    from flowcli.io import read_flow, read_image

    ex = examples_dir()
    for name in EXAMPLE_FILES:
        assert (ex / name).is_file(), name
    a = read_image(ex / "frame_0001.png")
    assert read_flow(ex / "frame_0001_true.flo")[0].shape == a.shape[:2] + (2,)
    assert (ex / "clip.mp4").is_file()
    assert len(list((ex / "clip_flow").glob("*.png"))) == 11
