"""A wheel carries the bundled weights and the examples: built from the source tree, installed into a fresh virtual
environment (torch and the other dependencies from the system's site-packages), run from another folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow

WEIGHT_FILES = {"flowcli-synthetic.pt", "MODEL_CARD.md", "train_synthetic.toml"}
EXAMPLE_FILES = {"frame_0001.png", "frame_0002.png", "frame_0001_true.flo", "clip.mp4", "README.md"}


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built without network access from a copy of what a checkout holds (no build/ left in the tree)."""
    pytest.importorskip("setuptools")
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*")
    for name in ("pyproject.toml", "setup.py", "README.md", "MANIFEST.in", "LICENSE"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, src / name)
    for name in ("flowcli", "weights", "examples"):
        shutil.copytree(REPO / name, src / name, ignore=skip)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
          "-w", base / "dist", src])
    found = list((base / "dist").glob("flowcli-*.whl"))
    assert len(found) == 1, found
    return found[0]


def test_wheel_holds_weights_and_examples(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    weights = {Path(n).name for n in names if n.startswith("flowcli/_weights/")}
    examples = {Path(n).name for n in names if n.startswith("flowcli/_examples/")}
    assert WEIGHT_FILES <= weights, weights
    assert {p.name for p in (REPO / "weights").glob("*.json")} <= weights  # the metrics beside the weights
    assert EXAMPLE_FILES <= examples, examples
    assert any(n.startswith("flowcli/_examples/clip_flow/") for n in names)
    packages = {str(p.parent.relative_to(REPO)) for p in (REPO / "flowcli").rglob("__init__.py")}
    assert packages <= {str(Path(n).parent) for n in names}  # every subpackage made it


def test_installed_wheel_runs_from_elsewhere(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    python = venv / "bin" / "python"
    if sys.prefix != sys.base_prefix:  # the tests run in a virtual environment: show the new one its packages too
        import site

        purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
        Path(purelib, "_outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # the outer pip installs into the environment it runs in; -I: never touch the editable install outside it
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", "-I", "-q", wheel])
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLOWCLI_") and k not in ("PYTHONPATH", "PYTHONHOME")}
    where = _run([python, "-c", "import flowcli, flowcli.weights as w, flowcli.jobs.health as h; "
                                "print(flowcli.__file__); print(w.weights_dir()); print(h.examples_dir())"],
                 cwd=work, env=env).stdout.split()
    package = Path(where[0]).parent
    assert package.is_relative_to(venv), where  # the wheel's flowcli, not the checkout's
    assert Path(where[1]) == package / "_weights" and Path(where[2]) == package / "_examples"
    examples = package / "_examples"
    flowcli = venv / "bin" / "flowcli"
    # the plain recipe keeps this quick; the bundled weights and their recipe still load
    r = _run([flowcli, "pair", examples / "frame_0001.png", examples / "frame_0002.png", "-o", "flow.flo",
              "--viz", "flow.png", "--recipe", "plain"], cwd=work, env=env)
    assert (work / "flow.flo").stat().st_size > 0 and (work / "flow.png").stat().st_size > 0, r.stderr
    r = _run([flowcli, "doctor", "--recipe", "plain"], cwd=work, env=env)
    assert str(package / "_weights" / "flowcli-synthetic.pt") in r.stderr and str(examples) in r.stderr, r.stderr
    assert "all checks passed" in r.stderr
    assert sorted(p.name for p in work.iterdir()) == ["flow.flo", "flow.png"]
