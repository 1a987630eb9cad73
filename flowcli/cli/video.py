"""``flowcli video CLIP``: flow between consecutive frames of a clip, streamed.

Three stages overlap: ffmpeg decodes in a background thread (a few frames ahead), the network runs in batches
in the main thread, and a writer thread colors, encodes and saves. Queues between them are bounded, so memory
stays flat on long clips. The color video uses one normalization for the whole clip (``--max-flow``, or a
percentile of the magnitude from a first pass over a sample of pairs), so colors mean the same speed in every
frame.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.common import (fail, flow_options, info, json_out, make_estimator, progress, rate_text, verbose,
                                warn)
from flowcli.cli.paths import check_output_folder, input_file, video_path_option

DEFAULT_FPS = 25.0  # when the clip does not say
SAMPLE_PAIRS = 16  # pairs the first (normalization) pass looks at
KEEP_BYTES = 256 * 2 ** 20  # a first pass that saw every pair keeps up to this much flow for the main pass


@click.command(short_help="Flow for every pair of consecutive frames of a video.")
@click.argument("clip", type=input_file())
@click.option("--viz", type=video_path_option(), default=None, metavar="OUT.mp4",
              help="Color-coded flow video, at the source fps (divided by --every).")
@click.option("--side-by-side", is_flag=True, help="In --viz, show the frame left of its flow.")
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
                   f"up to {SAMPLE_PAIRS} pairs.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pairs per network call.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
def command(clip: str, viz: Optional[str], side_by_side: bool, flo_dir: Optional[str], fmt: str, every: int,
            start: int, max_frames: Optional[int], resize: Optional[int], max_flow: Optional[float],
            percentile: float, batch_size: int, as_json: bool, weights: Optional[str], device: str, fp16: bool,
            bf16: bool, scale: float) -> None:
    """Compute flow between consecutive frames of CLIP, streaming (the clip is never held in memory).

    Example: flowcli video examples/clip.mp4 --viz flow.mp4 --side-by-side --flo-dir flows/
    """
    from flowcli.pipeline import VideoWriter, Worker, flow_percentile, open_video, replay_flow, stream_flow

    if not viz and not flo_dir:
        raise click.UsageError("nothing to write: give --viz OUT.mp4 and/or --flo-dir DIR")
    if side_by_side and not viz:
        raise click.UsageError("--side-by-side needs --viz")
    if viz:
        check_output_folder(Path(viz).parent)
    if flo_dir:
        check_output_folder(flo_dir, create=True)
    selection = dict(start=start, every=every, frames=max_frames, resize=resize)

    stream = open_video(clip, **selection)  # fails early on an unreadable clip, before loading weights
    vinfo = stream.info
    fps = vinfo.fps / every if vinfo.fps > 0 else 0.0
    if viz and fps <= 0:
        warn(f"{clip}: frame rate unknown; writing {DEFAULT_FPS:g} fps")
        fps = DEFAULT_FPS
    expected = _expected_pairs(vinfo.frame_estimate, start, every, max_frames)
    est = make_estimator(weights, device, fp16, bf16, scale)
    t0 = time.perf_counter()

    norm = max_flow
    cached = None
    if viz and norm is None:
        stream.close()  # the first pass reads the clip itself; reopen for the main pass afterwards
        stride = max(1, -(-expected // SAMPLE_PAIRS)) if expected else 1
        first = open_video(clip, **selection)
        try:
            result = flow_percentile(est, first.frames, percentile=percentile, stride=stride,
                                     batch_size=batch_size, keep_bytes=KEEP_BYTES)
        finally:
            first.close()
        norm = result.value if result.value > 0 else 1.0
        cached = result.flows  # a short clip: every pair computed already, kept for the main pass
        verbose(f"normalization: {percentile:g}th percentile of {result.pairs} sampled pairs = {norm:.2f} px"
                + (" (flows kept for the main pass)" if cached is not None else ""))
        stream = open_video(clip, **selection)
    t_main = time.perf_counter()

    out_dir = Path(flo_dir) if flo_dir else None
    digits = max(6, len(str(expected)))
    writer = VideoWriter(viz, fps) if viz else None
    worker = Worker(maxsize=2 * batch_size, name="encode")
    stats = {"pairs": 0, "mag_sum": 0.0, "mag_max": 0.0, "pixels": 0}

    def emit(job) -> None:
        """Writer thread: color, encode, save (numpy and ffmpeg release the GIL for most of it)."""
        import numpy as np

        from flowcli.io import write_flow

        flow = job.flow
        if not np.isfinite(flow).all():
            raise RuntimeError(f"the network returned non-finite flow for pair {job.index} (broken weights?)")
        mag = np.hypot(flow[..., 0], flow[..., 1])
        stats["mag_sum"] += float(mag.sum())
        stats["pixels"] += mag.size
        stats["mag_max"] = max(stats["mag_max"], float(mag.max()))
        if writer is not None:
            from flowcli.viz import flow_to_color

            color = flow_to_color(flow, max_flow=norm)
            writer.write(np.concatenate([job.frame1, color], axis=1) if side_by_side else color)
        if out_dir is not None:
            write_flow(out_dir / f"{job.index:0{digits}d}.{fmt}", flow)
        stats["pairs"] += 1

    try:
        with progress(unit="frames") as bar:
            task = bar.add_task("frames", total=expected or None)
            jobs = (replay_flow(stream.frames, cached) if cached is not None
                    else stream_flow(est, stream.frames, batch_size=batch_size))
            for n, job in enumerate(jobs, 1):
                worker.submit(emit, job)
                bar.update(task, completed=n)
            worker.close()
        if stats["pairs"] == 0:
            fail(f"{clip}: fewer than 2 frames{_selection_text(start, every, max_frames)}; no pair to compute")
        if writer is not None:
            writer.close()
    except BaseException:
        worker.abort()
        if writer is not None:
            writer.abort()
        raise
    finally:
        stream.close()

    seconds = time.perf_counter() - t0
    pairs = stats["pairs"]
    mean = stats["mag_sum"] / stats["pixels"] if stats["pixels"] else 0.0
    summary = {"clip": clip, "width": vinfo.width, "height": vinfo.height, "pairs": pairs,
               "source_fps": vinfo.fps, "fps": fps, "seconds": round(seconds, 3),
               "pairs_per_second": round(pairs / seconds, 3) if seconds > 0 else None,
               "first_pass_seconds": round(t_main - t0, 3), "max_flow": norm, "mean_px": round(mean, 4),
               "max_px": round(stats["mag_max"], 4), "viz": viz, "flo_dir": flo_dir, "device": str(est.device)}
    if as_json:
        json_out(summary)
    dest = ", ".join(x for x in (viz, flo_dir) if x)
    info(f"{pairs} pairs of {vinfo.width}x{vinfo.height} in {seconds:.1f} s ({rate_text(pairs, seconds)}) "
         f"on {est.device}: mean {mean:.2f} px, max {stats['mag_max']:.2f} px -> {dest}")


def _expected_pairs(frame_estimate: int, start: int, every: int, max_frames: Optional[int]) -> int:
    """Pairs the selection should give, from the header's frame count (0 when unknown)."""
    if not frame_estimate:
        return max(0, max_frames - 1) if max_frames else 0
    kept = max(0, -(-(frame_estimate - start) // every))
    if max_frames:
        kept = min(kept, max_frames)
    return max(0, kept - 1)


def _selection_text(start: int, every: int, max_frames: Optional[int]) -> str:
    parts = [f"--start {start}" if start else "", f"--every {every}" if every > 1 else "",
             f"--frames {max_frames}" if max_frames else ""]
    parts = [p for p in parts if p]
    return f" (after {' '.join(parts)})" if parts else ""
