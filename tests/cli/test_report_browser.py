"""The report in a real browser: ``eval --report`` of ``../shared/data/val`` with a baseline, copied to another
folder (it must not depend on where it was made), rendered by Debian's headless Chromium with the network off:
every picture loads, nothing is fetched from outside, and the page is not blank."""
from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from flowcli.io import read_image
from tests.support import SHARED

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--virtual-time-budget=10000"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian's chromium is not installed and could not be (.ci/run installs it with apt-get)")
    return path


def run_chromium(exe: str, profile, *args) -> subprocess.CompletedProcess:
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180)


def test_report_of_val_renders_in_chromium(invoke, tmp_path):
    val = SHARED / "data" / "val"
    if not val.is_dir():
        pytest.skip(f"needs {val} (the project's shared data beside the clone; absent here)")
    exe = chromium()
    made = tmp_path / "made"
    r = invoke("eval", "--dataset", "folder", "--root", val, "--baseline", "dis", "--report", made)
    assert r.exit_code == 0, r.stderr
    out = tmp_path / "copied" / "report"
    shutil.copytree(made, out)
    shutil.rmtree(made)  # the copy must stand alone
    page = (out / "index.html").read_text()
    assert not re.search(r"https?:|(?:src|href)=\"//|@import|url\(", page)  # no external URL of any kind
    pictures = re.findall(r'<img src="([^"]+)"', page)
    pairs = len([p for p in val.iterdir() if p.is_dir()])
    assert len(pictures) == 2 + 4 * pairs  # wheel, chart; per pair frame 1, truth, colors, error

    dom = run_chromium(exe, tmp_path / "profile", "--dump-dom", out.joinpath("index.html").as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert attrs.get("images") == str(len(pictures)), body  # the page's own check ran after every picture
    assert attrs.get("broken") == "0", f"pictures that did not load: {attrs.get('broken-src')}"

    shot = tmp_path / "shot.png"
    r2 = run_chromium(exe, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1400,1600",
                      out.joinpath("index.html").as_uri())
    assert r2.returncode == 0 and shot.is_file(), r2.stderr[-2000:]
    img = read_image(shot)
    assert img.shape[:2] == (1600, 1400)
    not_background = (np.abs(img.astype(int) - img[5, 5]).sum(axis=2) > 30).mean()
    assert not_background > 0.1 and img.std() > 30  # text, tables and a chart: not a blank page
