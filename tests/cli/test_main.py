"""The group: --version, --help everywhere, global options, error formatting."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli import __version__
from tests.support import one_error_line

COMMANDS = ["pair", "dir", "video", "viz", "convert", "info", "doctor"]


def test_version(invoke):
    r = invoke("--version")
    assert r.exit_code == 0
    assert r.stdout.strip() == f"flowcli {__version__}"


def test_help_lists_commands_in_workflow_order(invoke):
    r = invoke("--help")
    assert r.exit_code == 0
    listed = [ln.split()[0] for ln in r.stdout.split("Commands:")[1].splitlines() if ln.strip()]
    assert listed[:len(COMMANDS)] == COMMANDS


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_for_every_command(invoke, cmd):
    r = invoke(cmd, "--help")
    assert r.exit_code == 0
    assert "Usage: " in r.stdout
    if cmd in ("pair", "dir", "video", "doctor"):
        for opt in ("--weights", "--device", "--fp16"):
            assert opt in r.stdout


def test_unknown_command_is_a_usage_error(invoke):
    r = invoke("nosuchcommand")
    assert r.exit_code == 2
    assert "nosuchcommand" in one_error_line(r)


def test_verbose_and_quiet_exclude_each_other(invoke):
    r = invoke("-v", "-q", "info")
    assert r.exit_code == 2
    one_error_line(r)


def test_python_dash_m_entry_point():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "flowcli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"flowcli {__version__}"


def test_bad_device_is_a_usage_error(invoke, pair_files, weights_file):
    r = invoke("pair", *pair_files, "--weights", weights_file, "--device", "tpu")
    assert r.exit_code == 2
    assert "tpu" in one_error_line(r)


def test_scale_option_runs_the_network_at_that_scale(invoke, pair_files, weights_file, tmp_path):
    from flowcli.api import Estimator
    from flowcli.io import read_flow, read_image

    r = invoke("-v", "pair", *pair_files, "-o", tmp_path / "f.flo", "--weights", weights_file, "--scale", "2")
    assert r.exit_code == 0, r.stderr
    assert "scale 2" in r.stderr  # the verbose line says how the network ran
    flow = read_flow(tmp_path / "f.flo")[0]
    est = Estimator(weights_file, device="cpu", scale=2)
    np.testing.assert_allclose(flow, est.estimate(*(read_image(p) for p in pair_files)), atol=1e-5)
    for bad in ("9", "0", "x"):
        r = invoke("pair", *pair_files, "-o", tmp_path / "g.flo", "--weights", weights_file, "--scale", bad)
        assert r.exit_code == 2 and "--scale" in one_error_line(r)
    assert not (tmp_path / "g.flo").exists()


def test_scale_option_range_is_the_api_range():
    import click

    from flowcli.api import SCALE_RANGE
    from flowcli.cli.pair import command

    scale = next(p for p in command.params if p.name == "scale")
    assert isinstance(scale.type, click.FloatRange) and (scale.type.min, scale.type.max) == SCALE_RANGE


def test_fp16_on_cpu_is_one_line_runtime_error(invoke, pair_files, weights_file, tmp_path):
    r = invoke("pair", *pair_files, "-o", tmp_path / "f.flo", "--weights", weights_file, "--device", "cpu", "--fp16")
    assert r.exit_code == 1
    assert "fp16" in one_error_line(r)
    assert not (tmp_path / "f.flo").exists()


def test_fp16_and_bf16_exclude_each_other(invoke, pair_files, weights_file):
    r = invoke("pair", *pair_files, "--weights", weights_file, "--fp16", "--bf16")
    assert r.exit_code == 2
    one_error_line(r)


def test_debug_shows_traceback(invoke, tmp_path, pair_files, weights_file):
    from flowcli.io import write_image

    odd = tmp_path / "odd.png"
    write_image(odd, __import__("numpy").zeros((40, 40, 3), "uint8"))
    r = invoke("--debug", "pair", pair_files[0], odd, "--weights", weights_file)
    assert r.exit_code == 1
    assert "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")


def test_flowcli_alone_prints_the_usage_and_exits_0(invoke):
    r = invoke()
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith("Usage: flowcli") and "pair" in r.stdout and "eval" in r.stdout
    assert r.stderr == ""


def test_quiet_and_verbose(invoke, pair_files, weights_file, tmp_path):
    r = invoke("-q", "pair", *pair_files, "-o", tmp_path / "q.flo", "--weights", weights_file)
    assert r.exit_code == 0 and r.stderr == "" and r.stdout == ""
    r = invoke("-v", "pair", *pair_files, "-o", tmp_path / "v.flo", "--weights", weights_file)
    assert r.exit_code == 0
    assert "test-random" in r.stderr  # -v names the weights in use
