"""Where the data that ships with flowcli lives: the bundled weights and the examples."""
from __future__ import annotations

import importlib.resources
import os
from pathlib import Path


def data_dir(env: str, folder: str) -> Path:
    """``$env`` if set; else, in an installed wheel, the package's ``_<folder>`` data package (the build maps the
    source tree's top-level ``<folder>/`` onto it, see setup.py); else that top-level folder beside the package (a
    source checkout or an editable install)."""
    value = os.environ.get(env)
    if value:
        return Path(value)
    installed = importlib.resources.files("flowcli") / f"_{folder}"
    if isinstance(installed, Path) and installed.is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / folder
