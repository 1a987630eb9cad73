"""``flowcli eval --dataset NAME --root PATH``: score the network (and/or OpenCV baselines) on a benchmark split.

A thin command over :mod:`flowcli.evaluate`: it opens the dataset reader, builds the methods, drives a progress
bar, prints a rich table on stderr and writes the optional JSON / Markdown / submission outputs.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path
from typing import Optional

import click

from flowcli.baselines import BASELINES
from flowcli.cli.common import (console, fail, flow_options, info, json_out, make_estimator, progress, rate_text,
                                settings, verbose)
from flowcli.cli.paths import check_output_folder
from flowcli.data.datasets import DATASETS

PASSES = ("clean", "final", "both")
_HAS_PASSES = ("sintel", "things")


def _check_dest(path: Optional[str]) -> None:
    """Fail before the (slow) evaluation when a result file cannot be written ('-' is stdout)."""
    if path and path != "-":
        if Path(path).is_dir():
            fail(f"{path} is a folder; give a file name")
        check_output_folder(Path(path).parent)


def _write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically, or to stdout for '-'."""
    if path == "-":
        click.echo(text, nl=False)
        return
    from flowcli.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def _open(dataset: str, root: str, split: Optional[str], passes: Optional[str]):
    from flowcli.data.datasets import open_dataset

    kw = {}
    if passes is not None:
        if dataset not in _HAS_PASSES:
            raise click.BadParameter(f"{dataset} has no passes (only {', '.join(_HAS_PASSES)} do)",
                                     param_hint="'--pass'")
        kw["passes"] = "both" if passes == "both" else passes
    try:
        return open_dataset(dataset, root, split, **kw)
    except ValueError as exc:
        # the readers check the split name before touching the disk and quote it: that is a usage error
        if split is not None and repr(split) in str(exc) and "split" in str(exc):
            raise click.BadParameter(str(exc), param_hint="'--split'") from None
        raise


def _methods(baselines: tuple, with_model: bool, weights, device, fp16, bf16, scale) -> dict:
    """``{id: estimator}``: the network first (when asked for), then the baselines in the given order."""
    from flowcli.baselines import BaselineEstimator
    from flowcli.evaluate import method_name

    methods = {}
    if not baselines or with_model:
        est = make_estimator(weights, device, fp16, bf16, scale)
        methods[method_name(est)[0]] = est
    for name in dict.fromkeys(baselines):  # repeated --baseline runs once
        methods[name] = BaselineEstimator(name)
    return methods


def _print_table(results: dict, per_sequence: bool, title: str) -> None:
    from rich import box
    from rich.table import Table

    from flowcli.evaluate import table_rows

    header, rows = table_rows(results, per_sequence=per_sequence)
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < 2 else "right", no_wrap=i >= 2)
    n_methods = len(results)
    for i, row in enumerate(rows):
        # one section per group (all methods of a group together), the group named once
        first = i % n_methods == 0
        shown = [row[0] if first else ""] + row[1:]
        table.add_row(*shown, end_section=(i % n_methods == n_methods - 1 and i != len(rows) - 1))
    con = console()
    if con.is_terminal:
        con.print(table)  # rich fits it to the window, wrapping group and method names if it must
        return
    # A log file or pipe has no width of its own and rich would squeeze the table into 80 columns: print it whole
    # (Console.print caps any width at the console's, hence a console of the table's natural width on the same file).
    from rich.console import Console
    from rich.measure import Measurement

    natural = Measurement.get(con, con.options.update(max_width=10_000), table).maximum
    Console(file=con.file, width=max(con.width, natural), soft_wrap=True, highlight=False).print(table)


@click.command("eval", short_help="Score the network or OpenCV baselines on a benchmark split.")
@click.option("--dataset", "dataset", required=True, type=click.Choice(list(DATASETS), case_sensitive=False),
              help="Dataset layout of --root.")
@click.option("--root", required=True, metavar="PATH", help="The dataset's folder, in its official layout.")
@click.option("--split", default=None, metavar="NAME",
              help="sintel/kitti/middlebury: training (default) or test; chairs: train (default), val, all; "
                   "things: train (default) or test; folder: none.")
@click.option("--pass", "passes", type=click.Choice(PASSES), default=None,
              help="Sintel/Things render pass (default both).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the first N pairs.")
@click.option("--per-sequence", is_flag=True, help="Also a row per sequence (Sintel scene, folder group).")
@click.option("--json", "json_file", default=None, metavar="FILE",
              help="Write all results (summary, per sequence, per image) as JSON to FILE ('-' = stdout).")
@click.option("--markdown", "markdown_file", default=None, metavar="FILE",
              help="Write the table as Markdown to FILE ('-' = stdout), for the README and the model card.")
@click.option("--write-submission", "submission_dir", default=None, metavar="DIR",
              help="Write every prediction in the benchmark's upload layout (Sintel PASS/SCENE/frame_%04d.flo, "
                   "KITTI 16-bit %06d_10.png); needed for test splits, which have no ground truth.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(list(BASELINES)),
              help="Run this OpenCV method instead of the network (repeatable).")
@click.option("--with-model", is_flag=True, help="With --baseline: run the network too, in the same table.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pairs per network call.")
@flow_options
def command(dataset: str, root: str, split: Optional[str], passes: Optional[str], limit: Optional[int],
            per_sequence: bool, json_file: Optional[str], markdown_file: Optional[str],
            submission_dir: Optional[str], baselines: tuple, with_model: bool, batch_size: int,
            weights: Optional[str], device: str, fp16: bool, bf16: bool, scale: float) -> None:
    """Score optical flow on a dataset split, the way its benchmark does.

    Prints a table (AEE, AEE on non-occluded/occluded pixels where masks exist, share of pixels within
    1/3/5 px, KITTI Fl-all, seconds per pair) on stderr. Sintel, Chairs and Things weigh every pixel the same;
    KITTI, Middlebury and folder weigh every image the same. Example:

    \b
    flowcli eval --dataset folder --root ../shared/data/real --baseline dis --with-model --per-sequence
    """
    from flowcli.evaluate import check_scorable, markdown_table

    if json_file == "-" and markdown_file == "-":
        raise click.UsageError("--json - and --markdown - cannot both use stdout")
    dataset = dataset.lower()
    for path in (json_file, markdown_file):
        _check_dest(path)
    ds = _open(dataset, root, split, passes)
    n = len(ds) if limit is None else min(limit, len(ds))
    if submission_dir is None:
        try:
            check_scorable(ds, limit=n)  # before loading any method: fails at once, naming the expected path
        except ValueError as exc:
            raise ValueError(str(exc).replace("give a submission folder", "pass --write-submission DIR")) from None
    else:
        check_output_folder(submission_dir, create=True)
    methods = _methods(baselines, with_model, weights, device, fp16, bf16, scale)
    info(f"{_title(ds)}: {n} of {len(ds)} pairs under {ds.root}"
         f" ({'pixel-weighted' if ds.metric_kind == 'sintel' else 'per-image'} metrics)")

    results = {}
    with progress() as bar:
        for mid, est in methods.items():
            results[mid] = _run_one(ds, mid, est, bar, n, limit=limit, batch_size=batch_size,
                                    submission_dir=submission_dir)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = _machine(methods)
    scored = any(r.scored for r in results.values())
    if scored and not settings().quiet:
        rule = "AEE over all pixels" if ds.metric_kind == "sintel" else "AEE = mean of per-image AEEs"
        title = f"{_title(ds)}, {n} pairs ({rule}; accuracies and Fl-all over all pixels)"
        _print_table(results, per_sequence, title)
    for r in results.values():
        if r.pairs > r.scored:
            info(f"{r.label}: {r.pairs - r.scored} of {r.pairs} pairs have no ground truth (predicted only)")
        if r.written:
            info(f"{r.label}: wrote {len(r.written)} flow files in the {ds.name} upload layout to "
                 f"{os.path.join(submission_dir, '')}")
    if json_file:
        doc = {"dataset": ds.name, "split": ds.split, "root": str(ds.root), "pairs": n, "date": stamp,
               "machine": machine, "methods": {mid: r.to_dict() for mid, r in results.items()}}
        if json_file == "-":
            json_out(doc)
        else:
            _write_text(json_file, json.dumps(doc, indent=2) + "\n")
            info(f"results written to {json_file}")
    if markdown_file:
        # the caption says when and where: s/pair only means something with the machine beside it
        caption = f"\n{_title(ds)}, {n} pairs; measured {stamp} on {machine}.\n"
        _write_text(markdown_file, markdown_table(results, per_sequence=per_sequence) + caption)
        if markdown_file != "-":
            info(f"table written to {markdown_file}")


def _machine(methods: dict) -> str:
    """A short description of where the methods ran: CPU model and count, and the network's device."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs"
    devices = {str(est.device) for est in methods.values() if hasattr(est, "device")}
    if any(d.startswith("cuda") for d in devices):
        import torch

        text += ", " + ", ".join(sorted(torch.cuda.get_device_name(torch.device(d)) for d in devices
                                        if d.startswith("cuda")))
    return text


def _title(ds) -> str:
    return ds.name if ds.split in ("", "all") else f"{ds.name} {ds.split}"


def _run_one(ds, mid: str, est, bar, n: int, **kwargs):
    """One method over the dataset, advancing its own progress task (rate = pairs per wall-clock second)."""
    import time

    from flowcli.evaluate import evaluate, method_name

    task = bar.add_task(mid, total=n, rate="")
    t0 = time.perf_counter()
    done = [0]

    def on_item(item: dict) -> None:
        done[0] += 1
        bar.update(task, advance=1, rate=rate_text(done[0], time.perf_counter() - t0))
        m = item["metrics"]
        if m is not None:
            aee = "no valid pixels" if m["aee"] is None else f"AEE {m['aee']:.3f}"
            verbose(f"{mid} {item['name']}: {aee}")

    return evaluate(ds, est, on_item=on_item, method=mid, label=method_name(est)[1], **kwargs)
