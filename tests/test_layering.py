"""The dependency direction: cli -> jobs -> api -> model. Library layers never reach up, and the numpy-only layers
never load torch, click or rich (so they stay usable on their own and quick to import)."""
from __future__ import annotations

import ast
import json
import subprocess
import sys

import pytest

from tests.support import REPO

PACKAGE = REPO / "flowcli"

# package (or module) -> the flowcli packages it must never import, at any depth of its own code
FORBIDDEN = {
    "model": ("flowcli.api", "flowcli.weights", "flowcli.jobs", "flowcli.cli", "flowcli.train"),
    "api": ("flowcli.jobs", "flowcli.cli", "flowcli.train"),
    "jobs": ("flowcli.cli", "flowcli.train"),
    "io": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli"),
    "viz": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli"),
    "data": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli"),
    "postprocess": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli", "torch"),
    "metrics": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli", "torch"),
    "recipe": ("flowcli.model", "flowcli.api", "flowcli.jobs", "flowcli.cli", "torch"),
}


def imported_modules(path) -> set[str]:
    """Every module an ``import`` statement of the file names (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parts = path.relative_to(REPO).with_suffix("").parts
    package = parts[:-1] if parts[-1] != "__init__" else parts[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            name = ".".join(x for x in (base, node.module or "") if x)
            out.add(name)
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_do_not_import_upwards(layer):
    files = [PACKAGE / f"{layer}.py"] if (PACKAGE / f"{layer}.py").exists() else sorted((PACKAGE / layer).rglob("*.py"))
    assert files, layer
    for f in files:
        bad = sorted(m for m in imported_modules(f) for b in FORBIDDEN[layer] if m == b or m.startswith(b + "."))
        assert not bad, f"{f.relative_to(REPO)} imports {bad}"


def test_jobs_and_recipe_import_without_click_or_rich():
    code = ("import json, sys\n"
            "import flowcli.jobs.folder, flowcli.jobs.video, flowcli.jobs.evaluation, flowcli.jobs.pictures\n"
            "import flowcli.recipe, flowcli.postprocess, flowcli.streaming\n"
            "print(json.dumps(sorted(m for m in ('click', 'rich') if m in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
