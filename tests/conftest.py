"""Shared test fixtures: where ../shared is, the real pairs, a random-weights checkpoint, small frames, a short clip,
a runner of the real command group. Helpers live in tests/support.py."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.support import SHARED, make_frames, write_clip


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs {path} (the project's shared data beside the clone; absent here)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """``../shared/data/real``: one folder per real pair (img1.*, img2.*, gt.flo or gt_flow_kitti.png)."""
    return _need(SHARED / "data" / "real")


@pytest.fixture(scope="session")
def real(real_dir):
    """The real pairs, loaded once (:func:`tests.support.load_real`)."""
    from tests.support import load_real

    return load_real(real_dir)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return _need(SHARED / "fixtures")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory) -> Path:
    """A flowcli checkpoint holding a randomly initialised network (finite, arbitrary flow)."""
    import torch

    from flowcli.model import build_liteflownet
    from flowcli.weights import save_checkpoint

    path = tmp_path_factory.mktemp("weights") / "random.pt"
    torch.manual_seed(0)
    save_checkpoint(path, build_liteflownet().state_dict(), {"name": "test-random", "training_data": "none"})
    return path


@pytest.fixture
def bundled(monkeypatch, tmp_path, weights_file) -> Path:
    """Make the random checkpoint the bundled weights (FLOWCLI_WEIGHTS_DIR)."""
    import shutil

    d = tmp_path / "bundled"
    d.mkdir()
    shutil.copy(weights_file, d / "flowcli-synthetic.pt")
    monkeypatch.setenv("FLOWCLI_WEIGHTS_DIR", str(d))
    return d


@pytest.fixture
def no_bundled(monkeypatch, tmp_path) -> Path:
    """An empty bundled-weights folder: the state of a checkout before training."""
    d = tmp_path / "no-weights"
    d.mkdir()
    monkeypatch.setenv("FLOWCLI_WEIGHTS_DIR", str(d))
    monkeypatch.delenv("FLOWCLI_WEIGHTS", raising=False)
    return d


@pytest.fixture
def frames_dir(tmp_path) -> Path:
    d = tmp_path / "frames"
    make_frames(d, 4)
    return d


@pytest.fixture
def pair_files(tmp_path) -> tuple[Path, Path]:
    paths = make_frames(tmp_path / "pair", 2)
    return paths[0], paths[1]


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_clip(tmp_path / "clip.mp4")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """``invoke(args...)`` -> click Result, running the real group (its error handling included)."""
    from flowcli.cli import main

    def run(*args, **kwargs):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return run


@pytest.fixture(scope="session")
def recipe_weights(tmp_path_factory):
    """Random weights whose metadata names a recipe (two scales, fusion, refinement)."""
    import torch

    from flowcli.model import build_liteflownet
    from flowcli.recipe import Recipe
    from flowcli.weights import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "with-recipe.pt"
    recipe = Recipe(candidates=("net@1", "net@0.5"), refine={"fixed_point_iterations": 3, "octaves": 2},
                    name="default")
    save_checkpoint(path, build_liteflownet().state_dict(), {"name": "with-recipe", "recipe": recipe.to_dict()})
    return path
