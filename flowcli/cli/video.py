"""``flowcli video CLIP``: flow between consecutive frames of a clip, streamed (:mod:`flowcli.jobs.video`)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import pass_app, rate_text
from flowcli.cli.options import check_distinct, check_output_folder, flow_options, input_file, make_estimator, video_path_option
from flowcli.cli.options import ExtPath
from flowcli.jobs.motion import STATS_EXTENSIONS
from flowcli.cli.parallel import SharedTask, rank_group


@click.command(short_help="Flow for every pair of consecutive frames of a video.")
@click.argument("clip", type=input_file())
@click.option("--viz", type=video_path_option(), default=None, metavar="OUT.mp4",
              help="Color-coded flow video, at the source fps (divided by --every). Under torchrun it needs "
                   "--flo-dir: rank 0 makes it from the flow files when every rank is done.")
@click.option("--side-by-side", is_flag=True, help="In --viz, show the frame left of its flow.")
@click.option("--legend", is_flag=True,
              help="In --viz, the color wheel with the magnitude of full saturation in pixels, right of each frame.")
@click.option("--stats", "stats_files", multiple=True, type=ExtPath(STATS_EXTENSIONS, "statistics"), metavar="FILE",
              help="Motion over time, per pair: mean, median and 95th-percentile magnitude and mean direction, as a "
                   ".csv table or a .png/.svg/.pdf plot (needs matplotlib: flowcli[report]). Repeatable.")
@click.option("--flo-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="One flow file per pair: DIR/000000.flo, 000001.flo, ...")
@click.option("--format", "fmt", type=click.Choice(["flo", "png", "pfm", "npy", "npz"]), default="flo",
              show_default=True, help="Format of the --flo-dir files.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Use every N-th frame (flow between frames N apart).")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First frame (0-based).")
@click.option("--frames", "max_frames", type=click.IntRange(min=2), default=None, metavar="N",
              help="Use at most N frames (N-1 pairs).")
@click.option("--resize", type=click.IntRange(min=32), default=None, metavar="LONG_SIDE",
              help="Scale frames so that the long side has this many pixels (before inference).")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Magnitude of full color saturation for the whole clip (skips the first pass).")
@click.option("--percentile", type=click.FloatRange(50, 100), default=99.0, show_default=True,
              help="Without --max-flow: saturate at this percentile of the magnitude, from a first pass over "
                   "up to 16 pairs (under torchrun: of the same pairs' flow files).")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pairs per network call.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
@pass_app
def command(app, clip: str, viz: Optional[str], side_by_side: bool, legend: bool, stats_files: tuple,
            flo_dir: Optional[str], fmt: str, every: int, start: int, max_frames: Optional[int], resize: Optional[int],
            max_flow: Optional[float], percentile: float, batch_size: int, as_json: bool, flow) -> None:
    """Compute flow between consecutive frames of CLIP, streaming (the clip is never held in memory).

    Under torchrun (docs/distributed.md) each rank computes a contiguous run of the pairs on its own GPU and writes
    their --flo-dir files under their numbers in the whole clip (the files of a plain run).

    Example: flowcli video examples/clip.mp4 --viz flow.mp4 --side-by-side --flo-dir flows/
    """
    from flowcli.distributed import World
    from flowcli.jobs.video import VideoJob, merge_results, run_video, split_job
    from flowcli.videoio import open_video

    if not viz and not flo_dir and not stats_files:
        raise click.UsageError("nothing to write: give --viz OUT.mp4, --flo-dir DIR and/or --stats FILE")
    if side_by_side and not viz:
        raise click.UsageError("--side-by-side needs --viz")
    if legend and not viz:
        raise click.UsageError("--legend needs --viz")
    _check_plots(stats_files)
    if viz and not flo_dir and World.from_env().enabled:
        raise click.UsageError("under torchrun --viz needs --flo-dir (rank 0 makes the video from the flow files)")
    check_distinct([clip], ([viz] if viz else []) + list(stats_files))  # no output may replace the clip or another
    job = VideoJob(clip, viz, side_by_side, flo_dir, fmt, start, every, max_frames, resize, max_flow, percentile,
                   batch_size, legend=legend, stats=bool(stats_files))
    with rank_group(flow) as ranks:
        if viz:
            check_output_folder(Path(viz).parent)
        for path in stats_files:
            check_output_folder(Path(path).parent)
        if flo_dir:
            check_output_folder(flo_dir, create=True)
        open_video(clip, **job.selection).close()  # an unreadable clip fails here, before the weights load
        est = make_estimator(app, flow)
        part, total = split_job(job, ranks.world.rank, ranks.world.size) if ranks.world.enabled else (job, None)
        with app.progress(unit="frames") as bar:
            task = SharedTask(bar, ranks, "frames", total=total)
            try:
                result = run_video(est, part, on_start=None if total is not None else lambda n: task.set_total(n or None),
                                   on_advance=task.advance, on_note=app.verbose, on_warning=app.warn,
                                   allow_empty=ranks.world.enabled)
            except KeyboardInterrupt as exc:
                exc.message = "interrupted; no video written" + (f", the flow files in {flo_dir} are complete"
                                                                  if flo_dir else "")
                raise
            ranks.settle(on_wait=task.refresh)
        result = merge_results(job, ranks.gather(result))
    if not app.is_main:
        return
    if viz and ranks.world.enabled:
        _render(app, job, result)
    _write_stats(clip, stats_files, result)
    summary = {"clip": clip, "width": result.width, "height": result.height, "pairs": result.pairs,
               "source_fps": result.source_fps, "fps": result.fps, "seconds": round(result.seconds, 3),
               "pairs_per_second": round(result.pairs / result.seconds, 3) if result.seconds > 0 else None,
               "first_pass_seconds": round(result.first_pass_seconds, 3), "max_flow": result.max_flow,
               "mean_px": round(result.mean_px, 4), "max_px": round(result.max_px, 4), "viz": viz, "flo_dir": flo_dir,
               "device": str(est.device), **({"ranks": ranks.world.size} if ranks.world.enabled else {}),
               **({"stats": list(stats_files)} if stats_files else {})}
    if as_json:
        app.json(summary)
    dest = ", ".join(x for x in (viz, flo_dir, *stats_files) if x)
    app.info(f"{result.pairs} pairs of {result.width}x{result.height} in {result.seconds:.1f} s "
             f"({rate_text(result.pairs, result.seconds)}) on {est.device}: mean {result.mean_px:.2f} px, "
             f"max {result.max_px:.2f} px -> {dest}")


def _render(app, job, result) -> None:
    """Rank 0, after every rank is done: the color video from the flow files (its time counts in the job's)."""
    import time

    from flowcli.jobs.video import render_flow_files

    t0 = time.perf_counter()
    with app.progress(unit="frames") as bar:
        task = bar.add_task("color video", total=result.pairs)
        render_flow_files(job, result, on_advance=lambda n: bar.advance(task, n), on_note=app.verbose,
                          on_warning=app.warn)
    result.seconds += time.perf_counter() - t0


def _check_plots(stats_files: tuple) -> None:
    """A --stats plot needs matplotlib: say so before any work (a .csv needs nothing)."""
    from flowcli.jobs.charts import MISSING, have_matplotlib

    plots = [p for p in stats_files if not p.lower().endswith(".csv")]
    if plots and not have_matplotlib():
        raise click.UsageError(f"--stats {plots[0]}: a plot needs matplotlib, and {MISSING}; a .csv needs nothing")


def _write_stats(clip: str, stats_files: tuple, result) -> None:
    """The --stats files (CSV or plot), from the per-pair statistics the run kept."""
    from flowcli.jobs.motion import write_stats

    for path in stats_files:
        write_stats(path, result.stats, title=f"{Path(clip).name}: motion per pair")
