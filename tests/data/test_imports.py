"""flowcli.data and flowcli.metrics must stay free of torch, click, rich and the model."""
from __future__ import annotations

import subprocess
import sys
from tests.support import REPO



def test_data_and_metrics_import_without_heavy_modules():
    code = (
        "import sys\n"
        "import flowcli.data, flowcli.metrics\n"
        "import flowcli.data.synthetic, flowcli.data.augment, flowcli.data.datasets\n"
        "from flowcli.data import SyntheticFlow, augment_pair, open_dataset, DATASETS\n"
        "bad = [m for m in ('torch', 'click', 'rich', 'flowcli.model') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "", f"heavy modules imported: {res.stdout.strip()}"
