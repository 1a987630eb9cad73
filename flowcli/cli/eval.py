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


def _methods(app, baselines: tuple, with_model: bool, with_plain: bool, flow) -> dict:
    """``{id: estimator}``: the network (its recipe, then the plain network with ``--with-plain``), then baselines."""
    from dataclasses import replace

    from flowcli.baselines import BaselineEstimator
    from flowcli.jobs.evaluation import method_name

    methods = {}
    if not baselines or with_model:
        settings = [flow] + ([replace(flow, recipe="plain", scales=None, refine=None)] if with_plain else [])
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
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True, help="Pairs per network call.")
@flow_options
@pass_app
def command(app, dataset: str, root: str, split: Optional[str], passes: Optional[str], limit: Optional[int],
            per_sequence: bool, by_magnitude: bool, json_file: Optional[str], markdown_file: Optional[str],
            submission_dir: Optional[str], baselines: tuple, with_model: bool, with_plain: bool, batch_size: int,
            flow) -> None:
    """Score optical flow on a dataset split, the way its benchmark does.

    Prints a table (AEE, AEE on non-occluded/occluded pixels where masks exist, share of pixels within 1/3/5 px,
    KITTI Fl-all, seconds per pair) on stderr. Sintel, Chairs and Things weigh every pixel the same; KITTI, Middlebury
    and folder weigh every image the same. Under torchrun (docs/distributed.md) each rank scores every W-th pair and
    rank 0 prints and writes the results of the whole split, the same as a plain run's. Example:

    \b
    flowcli eval --dataset folder --root ../shared/data/real --baseline dis --with-model --per-sequence
    """
    from flowcli.jobs.evaluation import merge_results

    if json_file == "-" and markdown_file == "-":
        raise click.UsageError("--json - and --markdown - cannot both use stdout")
    for path in (json_file, markdown_file):
        check_output_file(path)
    with rank_group(flow) as job:
        ds, n = _open_split(dataset, root, split, passes, limit, submission_dir, (json_file, markdown_file))
        methods = _methods(app, baselines, with_model, with_plain, flow)
        title = ds.name if ds.split in ("", "all") else f"{ds.name} {ds.split}"
        app.info(f"{title}: {n} of {len(ds)} pairs under {ds.root}"
                 f" ({'pixel-weighted' if ds.metric_kind == 'sintel' else 'per-image'} metrics)")
        with app.progress() as bar:
            tasks = {mid: SharedTask(bar, job, mid, n) for mid in methods}
            parts = {mid: score_share(app, tasks[mid], ds, mid, est, limit=limit, batch_size=batch_size,
                                   submission_dir=submission_dir, indices=job.world.share(range(n)))
                     for mid, est in methods.items()}
            job.settle(on_wait=lambda: [t.refresh() for t in tasks.values()])
        gathered = job.gather(parts)  # every rank's share of every method, merged below in the pairs' order
    if not app.is_main:
        return
    results = {mid: merge_results([g[mid] for g in gathered]) for mid in methods}
    render_eval(app, ds, results, n, per_sequence, by_magnitude, submission_dir)
    write_eval(app, ds, results, n, [str(getattr(e, "device", "")) for e in methods.values()], json_file=json_file,
               markdown_file=markdown_file, per_sequence=per_sequence, by_magnitude=by_magnitude)


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
