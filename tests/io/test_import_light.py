"""flowcli.io and flowcli.viz must import without torch, click, rich or the model."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CODE = """
import json, sys
import flowcli.io, flowcli.viz
from flowcli.io import read_flow, write_flow, read_image, write_image
from flowcli.viz import flow_to_color, warp_image, make_panel, fb_consistency
banned = ("torch", "click", "rich", "flowcli.model")
print(json.dumps(sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in banned))))
"""


def test_io_and_viz_import_light():
    out = subprocess.run([sys.executable, "-c", CODE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing flowcli.io/flowcli.viz pulled in {loaded}"
