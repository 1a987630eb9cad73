"""Fixtures for the command-line tests: a random-weights checkpoint, small frames, a short clip, a runner."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import textured_image

H, W = 64, 96  # small frames keep inference fast on a busy CPU


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


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The image translated by (dx, dy) with edge padding: a second frame with known motion."""
    return np.roll(np.roll(img, dy, axis=0), dx, axis=1)


def make_frames(folder: Path, n: int, *, names=None, h: int = H, w: int = W) -> list[Path]:
    """``n`` textured frames moving 1 px right per frame, written as PNG."""
    from flowcli.io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    base = textured_image(h, w + n, seed=3)
    paths = []
    for i in range(n):
        p = folder / (names[i] if names else f"frame_{i + 1:04d}.png")
        write_image(p, base[:, i:i + w])
        paths.append(p)
    return paths


@pytest.fixture
def frames_dir(tmp_path) -> Path:
    d = tmp_path / "frames"
    make_frames(d, 4)
    return d


@pytest.fixture
def pair_files(tmp_path) -> tuple[Path, Path]:
    paths = make_frames(tmp_path / "pair", 2)
    return paths[0], paths[1]


def write_clip(path: Path, n: int = 6, fps: float = 7, h: int = H, w: int = W) -> Path:
    """A short H.264 clip of a texture panning right, written with imageio."""
    import imageio.v2 as imageio

    base = textured_image(h, w + 2 * n, seed=5)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1,
                            ffmpeg_log_level="error") as writer:
        for i in range(n):
            writer.append_data(base[:, 2 * i:2 * i + w])
    return path


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


def one_error_line(result) -> str:
    """The stderr of a failed run must be exactly one line ``error: ...``; returns it."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def files_in(folder: Path) -> list[str]:
    """All file names under ``folder`` (hidden ones included: a stray temporary file is a partial output)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
