"""Rendering results on the stderr console: rich tables that keep their width in a log file."""
from __future__ import annotations

from pathlib import Path

import click


def print_table(app, header: list[str], rows: list[list[str]], title: str, *, group_size: int = 0, left: int = 2) -> None:
    """A rich table of strings; with ``group_size`` > 0 rows come in groups of that many (one per method), the first
    column named once per group and a rule between groups."""
    from rich import box
    from rich.table import Table

    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for i, h in enumerate(header):
        table.add_column(h, justify="left" if i < left else "right", no_wrap=i >= left)
    for i, row in enumerate(rows):
        first = not group_size or i % group_size == 0
        last_of_group = bool(group_size) and i % group_size == group_size - 1 and i != len(rows) - 1
        table.add_row(*([row[0] if first else ""] + row[1:]), end_section=last_of_group)
    con = app.console
    if con.is_terminal:
        con.print(table)  # rich fits it to the window
        return
    # A log file or pipe has no width of its own and rich would squeeze the table into 80 columns: print it whole.
    from rich.console import Console
    from rich.measure import Measurement

    natural = Measurement.get(con, con.options.update(max_width=10_000), table).maximum
    Console(file=con.file, width=max(con.width, natural), soft_wrap=True, highlight=False).print(table)


def write_text(path: str, text: str) -> None:
    """``text`` to ``path`` atomically, or to stdout for '-'."""
    if path == "-":
        click.echo(text, nl=False)
        return
    from flowcli.io.atomic import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")


def render_eval(app, ds, results: dict, n: int, per_sequence: bool, by_magnitude: bool, submission_dir,
                by_boundary: bool = False) -> None:
    """The evaluation's tables on the console (the metrics, with ``by_magnitude`` the AEE per band of motion, with
    ``by_boundary`` the AEE by distance to the nearest motion boundary)."""
    from flowcli.jobs.evaluation import boundary_rows, dataset_label, magnitude_rows, table_rows

    if any(r.scored for r in results.values()) and not app.quiet:
        rule = "AEE over all pixels" if ds.metric_kind == "sintel" else "AEE = mean of per-image AEEs"
        name = dataset_label(ds)
        print_table(app, *table_rows(results, per_sequence=per_sequence),
                    f"{name}, {n} pairs ({rule}; accuracies and Fl-all over all pixels)", group_size=len(results))
        if by_magnitude:
            print_table(app, *magnitude_rows(results), f"{name}: AEE by true motion (pixels pooled)", left=1)
        if by_boundary:
            print_table(app, *boundary_rows(results), f"{name}: AEE by distance to the nearest motion boundary "
                        "(pixels pooled)", left=1)
    for r in results.values():
        if r.pairs > r.scored:
            app.info(f"{r.label}: {r.pairs - r.scored} of {r.pairs} pairs have no ground truth (predicted only)")
        if r.written:
            app.info(f"{r.label}: wrote {len(r.written)} flow files in the {ds.name} upload layout to {submission_dir}")


def write_eval(app, ds, results: dict, n: int, devices: list, *, json_file, markdown_file, per_sequence: bool,
               by_magnitude: bool, by_boundary: bool = False) -> None:
    """The evaluation's JSON document and Markdown tables (to files, or '-' for stdout), stamped with the time and
    the machine (its CPU and the CUDA ``devices`` used)."""
    import datetime
    import json

    from flowcli.jobs.evaluation import machine_description, markdown_report, report

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = machine_description(devices)
    if json_file:
        doc = report(ds, results, pairs=n, stamp=stamp, machine=machine)
        app.json(doc) if json_file == "-" else write_text(json_file, json.dumps(doc, indent=2) + "\n")
    if markdown_file:
        write_text(markdown_file, markdown_report(ds, results, pairs=n, per_sequence=per_sequence,
                                                  by_magnitude=by_magnitude, by_boundary=by_boundary, stamp=stamp,
                                                  machine=machine))
