"""Shared test fixtures: where ../shared is, the real pairs, small synthetic images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FLOWCLI_SHARED", REPO.parent / "shared"))


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
def fixtures_dir() -> Path:
    return _need(SHARED / "fixtures")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def textured_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8), rich enough for flow to be well defined."""
    import cv2

    g = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale in (4, 16, 64):
        small = g.random((max(2, h // scale + 2), max(2, w // scale + 2), 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 3.0
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def write_image(path: Path, img: np.ndarray) -> None:
    """Write an image, creating its folder (the io writers do not create folders); for fake dataset trees."""
    from flowcli.io.image import write_image as _write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_image(path, img)


def put_flow(path: Path, flow: np.ndarray, valid=None) -> None:
    """Write a flow file, creating its folder; for fake dataset trees."""
    from flowcli.io import write_flow

    path.parent.mkdir(parents=True, exist_ok=True)
    write_flow(path, flow, valid)
