"""``flowcli eval --dataset NAME --root PATH``: score the network and/or OpenCV baselines on a benchmark split."""
from __future__ import annotations

from typing import Optional

import click

from flowcli.baselines import BASELINES
from flowcli.cli.app import pass_app
from flowcli.cli.options import check_output_file, check_output_folder, flow_options, make_estimator
from flowcli.cli.parallel import SharedTask, rank_group, score_share
from flowcli.cli.render import render_eval, write_eval
from flowcli.data.datasets import DATASETS


def _methods(app, baselines: tuple, with_model: bool, with_plain: bool, flow, with_recipes: tuple = ()) -> dict:
    """``{id: estimator}``: the network (its recipe, the presets of ``--with-recipe``, then the plain network with
    ``--with-plain``), then baselines."""
    from flowcli.baselines import BaselineEstimator
    from flowcli.jobs.evaluation import method_name

    methods = {}
    if not baselines or with_model:
        settings = ([flow] + [flow.plain().with_recipe(name) for name in dict.fromkeys(with_recipes)]
                    + ([flow.plain()] if with_plain else []))
        for est in (make_estimator(app, s) for s in settings):
            methods.setdefault(method_name(est)[0], est)
    for name in dict.fromkeys(baselines):  # repeated --baseline runs once
        methods[name] = BaselineEstimator(name)
    return methods


@click.command("eval", short_help="Score the network or OpenCV baselines on a benchmark split.")
@click.option("--dataset", "dataset", required=True, type=click.Choice(list(DATASETS), case_sensitive=False),
              help="Dataset layout of --root.")
@click.option("--root", required=True, metavar="PATH", help="The dataset's folder, in its official layout.")
@click.option("--split", default=None, metavar="NAME",
              help="sintel: training (default), test, or clean/final (that pass of training); kitti/middlebury: "
                   "training (default) or test; chairs: train (default), val, all; things: train or test; folder: none.")
@click.option("--pass", "passes", type=click.Choice(["clean", "final", "both"]), default=None,
              help="Sintel/Things render pass (default both).")
@click.option("--limit", type=click.IntRange(min=1), default=None, metavar="N", help="Only the first N pairs.")
@click.option("--per-sequence", is_flag=True, help="Also a row per sequence (Sintel scene, folder group).")
@click.option("--by-magnitude", is_flag=True, help="Also the AEE per band of true motion: 0-1, 1-3, 3-10, 10-30, "
                                                   "30-100, 100+ px.")
@click.option("--by-boundary", is_flag=True,
              help="Also the AEE by distance to the nearest motion boundary of the ground truth: 0-10, 10-60, 60+ px "
                   "(a motion boundary: 4-neighbours whose true flows differ by more than 1 px).")
@click.option("--json", "json_file", default=None, metavar="FILE",
              help="Write all results (summary, per sequence, per image) as JSON to FILE ('-' = stdout).")
@click.option("--markdown", "markdown_file", default=None, metavar="FILE",
              help="Write the tables as Markdown to FILE ('-' = stdout).")
@click.option("--write-submission", "submission_dir", default=None, metavar="DIR",
              help="Write every prediction in the benchmark's upload layout (Sintel PASS/SCENE/frame_%04d.flo, "
                   "KITTI 16-bit %06d_10.png); needed for test splits, which have no ground truth.")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(list(BASELINES)),
              help="Run this OpenCV method instead of the network (repeatable).")
@click.option("--with-model", is_flag=True, help="With --baseline: run the network too, in the same table.")
@click.option("--with-plain", is_flag=True, help="Also run the plain network beside the recipe, in the same table.")
@click.option("--with-recipe", "with_recipes", multiple=True, type=click.Choice(["fast", "default", "quality"]),
              help="Also run this recipe of the weights beside --recipe, in the same table (repeatable).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Pairs per network call.")
@click.option("--report", "report_dir", default=None, metavar="DIR",
              help="Also write an HTML report into DIR (index.html and its pictures, opens offline): the tables, the "
                   "AEE by true motion as a chart, and per pair frame 1, the true flow and each method's colors and "
                   "error map, worst first. Pairs that fail are listed as failed rows and the run goes on (exit 1).")
@click.option("--overwrite", is_flag=True, help="With --report: replace DIR when it exists and holds other files.")
@flow_options
@pass_app
def command(app, dataset: str, root: str, split: Optional[str], passes: Optional[str], limit: Optional[int],
            per_sequence: bool, by_magnitude: bool, by_boundary: bool, json_file: Optional[str],
            markdown_file: Optional[str], submission_dir: Optional[str], baselines: tuple, with_model: bool,
            with_plain: bool, with_recipes: tuple, batch_size: int,
            report_dir: Optional[str], overwrite: bool, flow) -> None:
    """Score optical flow on a dataset split, the way its benchmark does.

    Prints a table (AEE, AEE on non-occluded/occluded pixels where masks exist, share of pixels within 1/3/5 px,
    KITTI Fl-all, seconds per pair) on stderr. Sintel, Chairs and Things weigh every pixel the same; KITTI, Middlebury
    and folder weigh every image the same. Under torchrun (docs/distributed.md) each rank scores every W-th pair and
    rank 0 prints and writes the results of the whole split, the same as a plain run's. Example:

    \b
    flowcli eval --dataset folder --root ../shared/data/real --baseline dis --with-model --per-sequence
    flowcli eval --dataset folder --root ../shared/data/val --baseline dis --with-model --report val-report/
    """
    import contextlib
    import time

    from flowcli.jobs.evaluation import merge_results

    if json_file == "-" and markdown_file == "-":
        raise click.UsageError("--json - and --markdown - cannot both use stdout")
    if overwrite and not report_dir:
        raise click.UsageError("--overwrite needs --report DIR")
    if report_dir:
        from flowcli.distributed import World
        from flowcli.jobs.report import check_report_folder

        if World.from_env().enabled:
            raise click.UsageError("--report does not run under torchrun; write --json there and run the report "
                                   "in a plain run")
        # before the other outputs' checks: one inside the report folder is refused by name, not as a missing folder
        check_report_folder(report_dir, overwrite=overwrite, outputs=[json_file, markdown_file, submission_dir])
    for path in (json_file, markdown_file):
        check_output_file(path)
    with contextlib.ExitStack() as stack:
        with rank_group(flow) as job:
            ds, n = _open_split(dataset, root, split, passes, limit, submission_dir, (json_file, markdown_file))
            report = _open_report(stack, report_dir, overwrite, ds, n, (json_file, markdown_file, submission_dir))
            methods = _methods(app, baselines, with_model, with_plain, flow, with_recipes)
            title = ds.name if ds.split in ("", "all") else f"{ds.name} {ds.split}"
            app.info(f"{title}: {n} of {len(ds)} pairs under {ds.root}"
                     f" ({'pixel-weighted' if ds.metric_kind == 'sintel' else 'per-image'} metrics)")
            t0 = time.perf_counter()
            with app.progress() as bar:
                tasks = {mid: SharedTask(bar, job, mid, n) for mid in methods}
                parts = {mid: score_share(app, tasks[mid], ds, mid, est, limit=limit, batch_size=batch_size,
                                          submission_dir=submission_dir, indices=job.world.share(range(n)),
                                          **_report_hooks(app, report, mid))
                         for mid, est in methods.items()}
                job.settle(on_wait=lambda: [t.refresh() for t in tasks.values()])
            eval_seconds = time.perf_counter() - t0
            gathered = job.gather(parts)  # every rank's share of every method, merged below in the pairs' order
        if not app.is_main:
            return
        results = {mid: merge_results([g[mid] for g in gathered]) for mid in methods}
        render_eval(app, ds, results, n, per_sequence, by_magnitude, submission_dir, by_boundary=by_boundary)
        write_eval(app, ds, results, n, [str(getattr(e, "device", "")) for e in methods.values()], json_file=json_file,
                   markdown_file=markdown_file, per_sequence=per_sequence, by_magnitude=by_magnitude,
                   by_boundary=by_boundary)
        if report is not None:
            _finish_report(app, report, ds, n, results, methods, eval_seconds)


def _open_split(dataset: str, root: str, split, passes, limit, submission_dir, outputs):
    """:func:`flowcli.jobs.evaluation.prepare_split` with bad options as usage errors."""
    from flowcli.errors import GroundTruthError, SplitError
    from flowcli.jobs.evaluation import HAS_PASSES, prepare_split

    if passes is not None and dataset.lower() not in HAS_PASSES:
        raise click.BadParameter(f"{dataset} has no passes (only {', '.join(HAS_PASSES)} do)", param_hint="'--pass'")
    try:
        ds, n = prepare_split(dataset.lower(), root, split, passes, limit=limit, submission_dir=submission_dir,
                              outputs=[f for f in outputs if f and f != "-"])
    except SplitError as exc:
        raise click.BadParameter(str(exc), param_hint="'--split'") from None
    except GroundTruthError as exc:
        raise exc.with_hint("pass --write-submission DIR") from None
    if submission_dir is not None:
        check_output_folder(submission_dir, create=True)
    return ds, n


def _open_report(stack, report_dir: Optional[str], overwrite: bool, ds, n: int, outputs):
    """The :class:`flowcli.jobs.report.EvalReport` of ``--report`` (None without it), checked before any method loads:
    a folder holding other files (without ``--overwrite``), the split's files or another output are refused."""
    if not report_dir:
        return None
    from flowcli.jobs.report import EvalReport, check_report_folder

    pairs = list(getattr(ds, "pairs", []))[:n]
    inputs = [f for q in pairs for f in (q.img1, q.img2, q.flow, q.occ, q.invalid, q.flow_noc) if f] + [ds.root]
    check_report_folder(report_dir, overwrite=overwrite, inputs=inputs, outputs=[o for o in outputs if o])
    return stack.enter_context(EvalReport(report_dir, overwrite=overwrite))


def _report_hooks(app, report, mid: str) -> dict:
    """``evaluate``'s hooks that feed the report: every prediction, and failed pairs (reported, then skipped)."""
    if report is None:
        return {}

    def failed(item: dict) -> None:
        app.failed(f"{mid}: {item['name']}: {item['error']}")
        report.add_failure(mid, item)

    return {"on_pair": lambda i, sample, flow: report.add_pair(mid, i, sample, flow), "on_failure": failed}


def _finish_report(app, report, ds, n: int, results: dict, methods: dict, eval_seconds: float) -> None:
    """Write the report's page and move it into place; one line says where, how big and how long it took beside the
    eval. Failed pairs (rows of the report) make the exit status 1."""
    summary = report.finish(results, title=_title(ds), pairs=n,
                            names=[(q.name, q.sequence) for q in list(getattr(ds, "pairs", []))[:n]],
                            provenance=_provenance(ds, methods),
                            metric_rule="AEE over all pixels" if ds.metric_kind == "sintel"
                            else "AEE = mean of per-image AEEs")
    for line in summary.left_out:
        app.info(f"report: left out {line}")
    app.info(f"report: {summary.folder / 'index.html'} ({summary.pairs} pairs, {summary.pictures} pictures, "
             f"{summary.bytes / 2 ** 20:.1f} MB): {summary.seconds:.2f} s of drawing and writing, mostly in the "
             f"background of the eval's {eval_seconds:.2f} s, {summary.finish_seconds:.2f} s after it")
    if summary.failed:
        app.abort(f"{summary.failed} of {n} pairs failed (failed rows in {summary.folder / 'index.html'})")


def _title(ds) -> str:
    from flowcli.jobs.evaluation import dataset_label

    return dataset_label(ds)


def _provenance(ds, methods: dict) -> dict:
    """The report's "how it was made": per method its weights, recipe and device, then the dataset, date, machine,
    version and command line."""
    import datetime

    from flowcli import __version__
    from flowcli.jobs.evaluation import machine_description, method_name

    out: dict = {}
    for est in methods.values():
        label = method_name(est)[1]
        ckpt = getattr(est, "checkpoint", None)
        if ckpt is not None:
            where = str(ckpt.path) if getattr(ckpt, "path", None) else ckpt.name
            recipe = est.recipe.describe() if getattr(est, "recipe", None) is not None else "plain"
            out[label] = [f"weights: {where} ({ckpt.name})", f"recipe: {recipe}",
                          f"device: {est.device}, {getattr(est, 'precision', 'fp32')}"
                          + (f", scale {est.scale:g}" if getattr(est, "scale", 1.0) != 1 else "")]
        else:
            import cv2

            out[label] = [f"OpenCV {cv2.__version__} ({type(est).__name__} {getattr(est, 'name', '')}), on the CPU"]
    devices = [str(getattr(e, "device", "")) for e in methods.values()]
    out["dataset"] = f"{_title(ds)} under {ds.root}"
    out["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out["machine"] = machine_description(devices)
    out["flowcli"] = __version__
    out["command line"] = _command_line()
    return out


def _command_line() -> str:
    """The command as typed (``sys.argv``) when this process is ``flowcli``; else (run from Python, as tests do) the
    command rebuilt from the options click parsed."""
    import os
    import shlex
    import sys

    prog = os.path.normpath(sys.argv[0]) if sys.argv else ""
    if os.path.basename(prog) == "flowcli" or prog.endswith(os.path.join("flowcli", "__main__.py")):
        return shlex.join(["flowcli", *sys.argv[1:]])
    ctx = click.get_current_context()
    words = ["flowcli", ctx.info_name or "eval"]
    for param in ctx.command.params:
        if not isinstance(param, click.Option):
            continue
        value = ctx.params.get(param.name)
        if value is None or value == () or value == param.default or (value is False and not param.secondary_opts):
            continue
        opt = max(param.opts, key=len)
        if param.is_flag:
            words.append(opt if value is True else param.secondary_opts[0])
        elif isinstance(value, (tuple, list)):
            for v in value:
                words += [opt, str(v)]
        else:
            words += [opt, str(value)]
    return shlex.join(words)
