"""``flowcli doctor``: is this installation working? Runs the bundled example pair and checks the result.

Exit 1 only when something is broken (a missing file, weights that do not load, non-finite flow, a wrong
shape); an inaccurate result is reported, not failed, since random or early weights are legitimate.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.common import console, flow_options, info, json_out, make_estimator, precision_of, settings

EXAMPLE_FILES = ("frame_0001.png", "frame_0002.png", "frame_0001_true.flo")


def examples_dir() -> Path:
    """``$FLOWCLI_EXAMPLES_DIR``, else ``examples/`` beside the package (a source checkout)."""
    env = os.environ.get("FLOWCLI_EXAMPLES_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "examples"


class Report:
    """Check lines ``ok``/``FAIL``/``note`` on stderr, collected for --json."""

    def __init__(self, quiet_print: bool) -> None:
        self.checks: list[dict] = []
        self.quiet_print = quiet_print

    def add(self, status: str, what: str, detail: str = "") -> None:
        self.checks.append({"check": what, "status": status, "detail": detail})
        if not self.quiet_print:
            tag = {"ok": "[green]ok  [/]", "fail": "[red]FAIL[/]", "note": "[yellow]note[/]"}[status]
            from rich.markup import escape

            console().print(f"{tag} {escape(what)}" + (f": {escape(detail)}" if detail else ""))

    @property
    def broken(self) -> bool:
        return any(c["status"] == "fail" for c in self.checks)


@click.command(short_help="Check the installation on the bundled example pair.")
@click.option("--examples", "examples", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder with frame_0001.png, frame_0002.png, frame_0001_true.flo (default: examples/).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@flow_options
def command(examples: Optional[str], as_json: bool, weights: Optional[str], device: str, fp16: bool,
            bf16: bool, scale: float) -> None:
    """Run the example pair through the weights (bundled unless --weights), compare with its true flow
    (average endpoint error, px) and report device and speed. Exit 1 when something is broken."""
    from flowcli.cli.info import environment, weights_card

    report = Report(quiet_print=settings().quiet)
    env = environment()
    report.add("ok", "versions", f"flowcli {env['flowcli']}, torch {env['torch']}, python {env['python']}, "
                                 f"opencv {env['opencv']}")
    if env["ffmpeg"]:
        report.add("ok", "ffmpeg", f"{env['ffmpeg']} (for `flowcli video`)")
    else:
        report.add("fail", "ffmpeg", f"not usable, `flowcli video` will not work: {env.get('ffmpeg_error')}")

    folder = Path(examples) if examples else examples_dir()
    missing = [name for name in EXAMPLE_FILES if not (folder / name).is_file()]
    if missing:
        report.add("fail", "example pair", f"missing in {folder}: {', '.join(missing)}")
    else:
        report.add("ok", "example pair", str(folder))

    card = weights_card(weights)
    if card["available"]:
        meta = card["meta"]
        report.add("ok", "weights", f"{card['path']} ({meta.get('name', '?')}, trained on "
                                    f"{meta.get('training_data', '?')})")
    else:
        report.add("fail", "weights", f"no bundled weights yet ({card.get('error')}); pass --weights PATH"
                   if not weights else str(card.get("error")))

    result: dict = {}
    if not report.broken:
        try:
            precision_of(fp16, bf16)
            est = make_estimator(weights, device, fp16, bf16, scale)
        except click.ClickException as exc:
            report.add("fail", "load", exc.format_message())
        else:
            report.add("ok", "device", f"{est.device} ({est.precision}), {env['cpu_threads']} CPU threads")
            result = _run_example(est, folder, report)

    summary = {"ok": not report.broken, "checks": report.checks, **result}
    if as_json:
        json_out(summary)
    if report.broken:
        raise _broken(report)
    info("all checks passed")


def _broken(report: Report):
    from flowcli.cli.common import CliError

    failed = [c["check"] for c in report.checks if c["status"] == "fail"]
    return CliError(f"doctor found a problem: {', '.join(failed)}")


def _run_example(est, folder: Path, report: Report) -> dict:
    """Run the pair twice (the first run includes one-off setup), check shape and finiteness, measure AEE."""
    import numpy as np

    from flowcli.io import read_flow, read_image

    try:
        a, b = read_image(folder / EXAMPLE_FILES[0]), read_image(folder / EXAMPLE_FILES[1])
        truth, valid = read_flow(folder / EXAMPLE_FILES[2])
    except (ValueError, OSError) as exc:
        report.add("fail", "example files", " ".join(str(exc).split()))
        return {}
    times = []
    flow = None
    for _ in range(2):
        t0 = time.perf_counter()
        flow = est.estimate(a, b)
        times.append(time.perf_counter() - t0)
    h, w = a.shape[:2]
    if flow.shape != (h, w, 2):
        report.add("fail", "flow shape", f"expected {(h, w, 2)}, got {flow.shape}")
        return {}
    if not np.isfinite(flow).all():
        report.add("fail", "flow values", f"{int((~np.isfinite(flow)).sum())} non-finite numbers")
        return {}
    if truth.shape != flow.shape:
        report.add("fail", "true flow", f"{folder / EXAMPLE_FILES[2]} is {truth.shape}, flow is {flow.shape}")
        return {}
    epe = np.sqrt(((flow - truth) ** 2).sum(axis=2))[valid]
    aee = float(epe.mean())
    zero = float(np.sqrt((truth ** 2).sum(axis=2))[valid].mean())
    report.add("ok", "flow", f"{w}x{h}, finite, AEE {aee:.2f} px vs true flow (zero flow would give {zero:.2f} px)")
    best = min(times)
    report.add("ok", "speed", f"{best:.3f} s per pair at {w}x{h} on {est.device} (first run {times[0]:.3f} s)")
    if aee >= zero:
        report.add("note", "accuracy", "no better than zero flow: untrained or wrong weights?")
    return {"aee_px": round(aee, 4), "zero_flow_aee_px": round(zero, 4), "seconds_per_pair": round(best, 4),
            "device": str(est.device), "size": [w, h]}
