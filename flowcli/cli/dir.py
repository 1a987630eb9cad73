"""``flowcli dir FRAMES -o OUTDIR``: flow for every consecutive pair of a folder (or the pairs of a file)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import is_out_of_memory, memory_tips, pass_app, rate_text
from flowcli.cli.options import check_output_folder, flow_options, input_file, make_estimator
from flowcli.cli.parallel import SharedTask, rank_group
from flowcli.jobs.folder import FORMATS

MAX_FAILURE_LINES = 20  # beyond that, a broken run would bury the summary
_DISK_FULL, _QUOTA = "No space left on device", "Disk quota exceeded"  # strerror of ENOSPC and EDQUOT


def _shard_option(ctx, param, value):
    from flowcli.frames import parse_shard

    try:
        return None if value is None else parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("dir", short_help="Flow for every consecutive pair in a folder.")
@click.argument("frames", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(dir_okay=True), metavar="OUTDIR",
              help="Folder for the flow files (created if needed).")
@click.option("--pairs", "pairs_file", type=input_file(), default=None, metavar="FILE",
              help="Pairs to compute, one 'IMG1 IMG2' per line (relative to FRAMES if given, else to FILE's "
                   "folder) instead of FRAMES' consecutive frames.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="flo", show_default=True,
              help="Flow file format (png = KITTI 16-bit).")
@click.option("--viz-dir", type=click.Path(), default=None, metavar="DIR", help="Also write color PNGs here.")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Magnitude of full saturation in --viz-dir pictures (default: per pair).")
@click.option("--resume", is_flag=True, help="Skip pairs whose output exists and reads back.")
@click.option("--shard", callback=_shard_option, default=None, metavar="I/N",
              help="Do only pairs with index % N == I (0-based), e.g. one shard per process or GPU. Under torchrun "
                   "the ranks split the shard's pairs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pairs per network call.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
@pass_app
def command(app, frames: Optional[str], outdir: str, pairs_file: Optional[str], fmt: str, viz_dir: Optional[str],
            max_flow: Optional[float], resume: bool, shard, batch_size: int, as_json: bool, flow) -> None:
    """Compute flow between consecutive frames of FRAMES (natural order: frame2 before frame10).

    The output for the pair (frame_0001.png, frame_0002.png) is OUTDIR/frame_0001.flo. A frame that cannot be
    read is reported and the pairs that need it are skipped; the exit status is 1 if any pair failed.

    Under torchrun (docs/distributed.md) rank r of W does the pairs a plain run with --shard r/W would, on its own
    GPU; rank 0 reports the whole job and exits with 1 if any pair of any rank failed.
    """
    from flowcli.jobs.folder import FolderResult, merge_results, pending

    if not frames and not pairs_file:
        raise click.UsageError("give a FRAMES folder or --pairs FILE")
    with rank_group(flow) as job:
        items = _plan(frames, outdir, pairs_file, fmt, viz_dir, shard)
        if frames and not pairs_file and app.is_main:
            _warn_skipped(app, frames)
        mine = job.world.share(items)
        todo = pending(mine) if resume else mine
        skipped = len(mine) - len(todo)
        if skipped and not job.world.enabled:
            app.info(f"resume: {skipped} of {len(items)} pairs already done")
        job.advance(skipped, "skipped")
        result = FolderResult()
        if todo or job.world.enabled:
            _run(app, job, flow, todo, lambda: len(items) - job.count("skipped"), batch_size, max_flow, result)
        parts = job.gather((result, skipped))
    result, skipped = merge_results([part for part, _ in parts]), sum(n for _, n in parts)
    summary = result.summary(len(items), skipped, outdir)
    if shard:
        summary["shard"] = f"{shard[0]}/{shard[1]}"
    if job.world.enabled:
        summary["ranks"] = job.world.size
    if as_json:
        app.json(summary)
    app.info(f"{len(result.written)} of {len(items)} pairs written to {outdir} ({skipped} already done) in "
             f"{result.seconds:.1f} s ({rate_text(len(result.written), result.seconds)})")
    if result.failures and app.is_main:  # rank 0 only: a launcher stops the job when any rank exits non-zero
        messages = [str(m) for _, m in result.failures.values()]
        memory = next((m for m in messages if is_out_of_memory(RuntimeError(m))), None)
        tip = f"; {memory_tips(click.get_current_context().command, gpu='cuda' in memory.lower())}" if memory else ""
        full = next((m for m in messages if _DISK_FULL in m or _QUOTA in m), None)
        if full and not tip:  # every later write failed the same way: say what to do, not only what happened
            tip = f"; {'disk quota exceeded' if _QUOTA in full else 'disk full'}: free space and rerun with --resume"
        app.abort(f"{len(result.failures)} of {len(items)} pairs failed{tip}")


def _warn_skipped(app, frames: str) -> None:
    """Say so when pictures of the folder are left out for their format (a phone's HEIC among its JPEGs): the pairs
    around them then span two frames' motion."""
    from flowcli.frames import skipped_images

    left_out = skipped_images(frames)
    if left_out:
        names = ", ".join(p.name for p in left_out[:3]) + (", ..." if len(left_out) > 3 else "")
        app.warn(f"{frames}: {len(left_out)} picture(s) in a format flowcli does not read left out ({names}); "
                 f"the pairs around them skip a frame (convert them to PNG or JPEG)")


def _plan(frames, outdir: str, pairs_file, fmt: str, viz_dir, shard) -> list:
    """The job's pairs (after --shard), with the output folders checked; a bad input is a usage error."""
    from flowcli.errors import InputError
    from flowcli.jobs.folder import plan_folder

    try:
        items = plan_folder(frames, outdir=outdir, pairs_file=pairs_file, fmt=fmt, viz_dir=viz_dir, shard_spec=shard)
    except InputError as exc:
        hint = "'--pairs'" if pairs_file and exc.path == str(pairs_file) else "'FRAMES'"
        raise click.BadParameter(str(exc), param_hint=hint) from None
    check_output_folder(outdir, create=True)
    if viz_dir:
        check_output_folder(viz_dir, create=True)
    return items


def _run(app, job, flow, todo, total, batch_size: int, max_flow: Optional[float], result) -> None:
    """This rank's pairs with a progress bar (the whole job's count) and a line per failure, then the wait for the
    other ranks; an interrupt says what is done and how to finish."""
    from flowcli.jobs.folder import run_folder

    def failed(item, message: str) -> None:
        n = len(result.failures)
        if n <= MAX_FAILURE_LINES:
            app.failed(f"{Path(item.frame1).name} -> {Path(item.frame2).name}: {message}")
        elif n == MAX_FAILURE_LINES + 1:
            app.failed("... (further failures are only counted)")

    with app.progress() as bar:
        task = SharedTask(bar, job, "pairs", total=total)
        try:
            if todo:
                run_folder(make_estimator(app, flow), todo, batch_size=batch_size, max_flow=max_flow,
                           on_failure=failed, result=result, on_advance=task.advance)
        except KeyboardInterrupt as exc:
            exc.message = (f"interrupted after {len(result.written)} of {len(todo)} pairs; the outputs written are "
                           f"complete, rerun with --resume to finish")
            raise
        job.settle(on_wait=task.refresh)
