"""The video job behind ``flowcli video``: flow between consecutive frames of a clip, streamed.

Three stages overlap: ffmpeg decodes in a background thread (a few frames ahead), the network runs in batches (the
recipe's CPU part in worker threads on a GPU, :mod:`flowcli.streaming`), and a writer thread colors, encodes and saves.
Queues between them are bounded, so memory stays flat on long clips. The color video uses one normalization for the
whole clip (``max_flow``, or a percentile of the magnitude from a first pass over a sample of pairs), so colors mean
the same speed in every frame.

Several processes (``flowcli video`` under torchrun) share a clip with :func:`split_job`: each computes a contiguous
run of pairs (their frame ranges overlap by one frame, so every pair is computed once) and writes its flow files under
the pairs' numbers in the whole clip; :func:`merge_results` adds up their results, and :func:`render_flow_files`
makes the color video afterwards from the flow files, normalized as the first pass of a single run would be.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from flowcli.threads import Worker
from flowcli.videoio import VideoWriter, open_video

__all__ = ["DEFAULT_FPS", "VideoJob", "VideoResult", "expected_pairs", "merge_results", "render_flow_files",
           "run_video", "split_job"]

DEFAULT_FPS = 25.0  # when the clip does not say
SAMPLE_PAIRS = 16  # pairs the first (normalization) pass looks at
KEEP_BYTES = 256 * 2 ** 20  # a first pass that saw every pair keeps up to this much flow for the main pass


@dataclass(frozen=True)
class VideoJob:
    """What to compute: the clip and its frame selection, and what to write (a color video and/or flow files)."""

    clip: str
    viz: Optional[str] = None
    side_by_side: bool = False
    flo_dir: Optional[str] = None
    fmt: str = "flo"
    start: int = 0
    every: int = 1
    frames: Optional[int] = None
    resize: Optional[int] = None
    max_flow: Optional[float] = None
    percentile: float = 99.0
    batch_size: int = 4
    first_pair: int = 0  # number of the first pair in the flow files' names (a part of a shared clip)
    digits: Optional[int] = None  # digits of those numbers (default: enough for the pairs the header announces)
    legend: bool = False  # the color wheel with the saturation magnitude beside each frame of the color video
    stats: bool = False  # keep each pair's motion statistics (flowcli.jobs.motion) in VideoResult.stats

    @property
    def selection(self) -> dict:
        return dict(start=self.start, every=self.every, frames=self.frames, resize=self.resize)


@dataclass
class VideoResult:
    """What a run did: the clip's size and rates, the pairs written, the normalization and flow statistics."""

    width: int
    height: int
    source_fps: float
    fps: float
    pairs: int = 0
    seconds: float = 0.0
    first_pass_seconds: float = 0.0
    max_flow: Optional[float] = None
    mean_px: float = 0.0
    max_px: float = 0.0
    # with VideoJob.stats: per pair, {"pair", "frame1", "frame2", "time_s"} and flowcli.jobs.motion.motion_stats
    stats: list = field(default_factory=list)


def expected_pairs(frame_estimate: int, start: int, every: int, max_frames: Optional[int]) -> int:
    """Pairs the selection should give, from the header's frame count (0 when unknown)."""
    if not frame_estimate:
        return max(0, max_frames - 1) if max_frames else 0
    kept = max(0, -(-(frame_estimate - start) // every))
    if max_frames:
        kept = min(kept, max_frames)
    return max(0, kept - 1)


def _first_pass(estimator, job: VideoJob, expected: int):
    """The clip's normalization: a magnitude percentile over a sample of pairs (and, for a short clip, its flows)."""
    from flowcli.streaming import flow_percentile

    stride = max(1, -(-expected // SAMPLE_PAIRS)) if expected else 1
    first = open_video(job.clip, **job.selection)
    try:
        result = flow_percentile(estimator, first.frames, percentile=job.percentile, stride=stride,
                                 batch_size=job.batch_size, keep_bytes=KEEP_BYTES)
    finally:
        first.close()
    return (result.value if result.value > 0 else 1.0), result


class _Emitter:
    """The writer thread's work: color, encode, save, and the flow statistics."""

    def __init__(self, job: VideoJob, writer: Optional[VideoWriter], norm: Optional[float], digits: int,
                 source_fps: float = 0.0) -> None:
        digits = job.digits or digits
        self.job, self.writer, self.norm, self.digits = job, writer, norm, digits
        self.pairs, self.mag_sum, self.mag_max, self.pixels = 0, 0.0, 0.0, 0
        self.source_fps, self.stats = source_fps, []

    def __call__(self, pair) -> None:
        from flowcli.io import write_flow

        flow = pair.flow
        if not np.isfinite(flow).all():
            raise RuntimeError(f"the network returned non-finite flow for pair {pair.index} (broken weights?)")
        mag = np.hypot(flow[..., 0], flow[..., 1])
        self.mag_sum, self.pixels = self.mag_sum + float(mag.sum()), self.pixels + mag.size
        self.mag_max = max(self.mag_max, float(mag.max()))
        if self.writer is not None:
            from flowcli.viz import flow_to_color

            color = flow_to_color(flow, max_flow=self.norm)
            self.writer.write(_compose(self.job, pair.frame1, color, self.norm))
        if self.job.flo_dir is not None:
            write_flow(flow_file(self.job, self.job.first_pair + pair.index, self.digits), flow)
        if self.job.stats:
            self.stats.append(_pair_stats(self.job.first_pair + pair.index, pair.source, self.source_fps, flow))
        self.pairs += 1


def _compose(job: VideoJob, frame1: np.ndarray, color: np.ndarray, norm: Optional[float]) -> np.ndarray:
    """A frame of the color video: the colors, the source frame left of them (--side-by-side), the legend right."""
    out = np.concatenate([frame1, color], axis=1) if job.side_by_side else color
    if job.legend:
        from flowcli.viz.color import add_legend

        out = add_legend(out, norm)
    return out


def _pair_stats(number: int, source: tuple, fps: float, flow: np.ndarray) -> dict:
    """One row of ``--stats``: the pair's number, its frames in the clip and the time of the first, and
    :func:`flowcli.jobs.motion.motion_stats`."""
    from flowcli.jobs.motion import frame_time, motion_stats

    return {"pair": int(number), "frame1": int(source[0]), "frame2": int(source[1]),
            "time_s": frame_time(int(source[0]), fps), **motion_stats(flow)}


def run_video(estimator, job: VideoJob, *, on_start: Optional[Callable[[int], None]] = None,
              on_advance: Optional[Callable[[int], None]] = None,
              on_note: Optional[Callable[[str], None]] = None,
              on_warning: Optional[Callable[[str], None]] = None, allow_empty: bool = False) -> VideoResult:
    """Run ``job``. ``on_start(expected_pairs)`` (0 when the header does not say), ``on_advance(n)`` as pairs are
    computed, ``on_note(text)`` for details (the normalization), ``on_warning(text)`` for what the user should know
    (an unknown frame rate). Raises ValueError for an unreadable
    clip or one with fewer than 2 selected frames (unless ``allow_empty``: a part of a shared clip may hold no pair);
    nothing is left behind on any error or interrupt (the video file appears only when complete). A clip damaged
    part-way (:attr:`flowcli.videoio.VideoStream.damage`) raises ValueError after the pairs before the damage are
    written."""
    note = on_note or (lambda text: None)
    stream = open_video(job.clip, **job.selection)  # fails early on an unreadable clip
    info = stream.info
    fps = info.fps / job.every if info.fps > 0 else 0.0
    if job.viz and fps <= 0:
        (on_warning or note)(f"{job.clip}: frame rate unknown; writing {DEFAULT_FPS:g} fps")
        fps = DEFAULT_FPS
    expected = expected_pairs(info.frame_estimate, job.start, job.every, job.frames)
    result = VideoResult(info.width, info.height, info.fps, fps, max_flow=job.max_flow)
    t0 = time.perf_counter()
    cached = None
    if job.viz and job.max_flow is None:
        stream.close()  # the first pass reads the clip itself; reopen for the main pass afterwards
        result.max_flow, first = _first_pass(estimator, job, expected)
        cached = first.flows  # a short clip: every pair computed already, kept for the main pass
        note(f"normalization: {job.percentile:g}th percentile of {first.pairs} sampled pairs = {result.max_flow:.2f} px"
             + (" (flows kept for the main pass)" if cached is not None else ""))
        stream = open_video(job.clip, **job.selection)
    result.first_pass_seconds = time.perf_counter() - t0
    _main_pass(estimator, job, stream, cached, result, expected, on_start, on_advance, allow_empty)
    result.seconds = time.perf_counter() - t0
    if stream.damage:
        # the pairs of the frames before the damage are written and complete; the run still fails, naming the clip
        raise ValueError(f"{stream.damage}; the {result.pairs} pairs before it are written")
    return result


def _main_pass(estimator, job, stream, cached, result: VideoResult, expected: int, on_start, on_advance,
               allow_empty: bool = False) -> None:
    from flowcli.streaming import replay_flow, stream_flow

    writer, worker = None, Worker(maxsize=2 * job.batch_size, name="encode")
    try:
        writer = VideoWriter(job.viz, result.fps) if job.viz else None  # inside: a refused writer still closes the clip
        emit = _Emitter(job, writer, result.max_flow, max(6, len(str(expected))), result.source_fps)
        if on_start:
            on_start(expected)
        pairs = (replay_flow(stream.frames, cached) if cached is not None
                 else stream_flow(estimator, stream.frames, batch_size=job.batch_size))
        for pair in pairs:
            worker.submit(emit, pair)
            if on_advance:
                on_advance(1)
        worker.close()
        if emit.pairs == 0 and not allow_empty:
            raise ValueError(f"{job.clip}: fewer than 2 frames{_selection_text(job)}; no pair to compute")
        if writer is not None:
            writer.close()
    except BaseException:
        worker.abort()
        if writer is not None:
            writer.abort()
        raise
    finally:
        stream.close()
    result.pairs, result.max_px, result.stats = emit.pairs, emit.mag_max, emit.stats
    result.mean_px = emit.mag_sum / emit.pixels if emit.pixels else 0.0


def _selection_text(job: VideoJob) -> str:
    parts = [f"--start {job.start}" if job.start else "", f"--every {job.every}" if job.every > 1 else "",
             f"--frames {job.frames}" if job.frames else ""]
    parts = [p for p in parts if p]
    return f" (after {' '.join(parts)})" if parts else ""


def flow_file(job: VideoJob, index: int, digits: int) -> Path:
    """The --flo-dir file of pair ``index`` of the clip."""
    return Path(job.flo_dir) / f"{index:0{digits}d}.{job.fmt}"


def _digits(expected: int) -> int:
    return max(6, len(str(expected)))


def split_job(job: VideoJob, rank: int, size: int) -> tuple[VideoJob, int]:
    """Rank ``rank`` of ``size``'s part of ``job`` and the pairs the whole job should give.

    The pairs (as many as the clip's header announces for the selection, or as a decoding pass counts when it does
    not say) are cut into ``size`` contiguous runs; the part runs from its first pair's first frame to its last
    pair's second frame, so neighbouring parts share one frame. The last part runs to the end of the clip (a header
    that is a frame or two off changes only its length). Parts write flow files only (no color video), numbered
    by the pair's place in the whole clip."""
    stream = open_video(job.clip, **job.selection)
    try:
        header = expected_pairs(stream.info.frame_estimate, job.start, job.every, job.frames)
        total = header or max(0, sum(1 for _ in stream.frames) - 1)
    finally:
        stream.close()
    lo, hi = rank * total // size, (rank + 1) * total // size
    if rank < size - 1:
        frames: Optional[int] = hi - lo + 1
    else:
        frames = job.frames - lo if job.frames else None
    part = replace(job, viz=None, side_by_side=False, start=job.start + lo * job.every, frames=frames,
                   first_pair=lo, digits=job.digits or _digits(header))
    return part, total


def merge_results(job: VideoJob, parts: Sequence[VideoResult]) -> VideoResult:
    """The whole clip's result from its parts' (:func:`split_job`): pairs and flow statistics over all parts,
    ``seconds`` the slowest part's. ValueError when no part had a pair (the clip has fewer than 2 frames)."""
    pairs = sum(p.pairs for p in parts)
    if len(parts) == 1 and pairs:
        return parts[0]
    if not pairs:
        raise ValueError(f"{job.clip}: fewer than 2 frames{_selection_text(job)}; no pair to compute")
    return replace(parts[0], pairs=pairs, seconds=max(p.seconds for p in parts),
                   mean_px=sum(p.mean_px * p.pairs for p in parts) / pairs, max_px=max(p.max_px for p in parts),
                   stats=sorted((row for p in parts for row in p.stats), key=lambda row: row["pair"]))


def render_flow_files(job: VideoJob, result: VideoResult, *, on_advance: Optional[Callable[[int], None]] = None,
                      on_note: Optional[Callable[[str], None]] = None,
                      on_warning: Optional[Callable[[str], None]] = None) -> None:
    """Write ``job.viz`` from the ``result.pairs`` flow files that the parts of ``job`` wrote in ``job.flo_dir``.
    Without ``job.max_flow`` the normalization is the percentile over the pairs that a single run's first pass
    samples, so the video is the one a single run makes. Sets ``result.max_flow``, ``result.fps`` and
    ``result.first_pass_seconds``."""
    stream = open_video(job.clip, **job.selection)  # the frames, for --side-by-side, and the header's pair count
    try:
        if not job.side_by_side:
            stream.close()
        header = expected_pairs(stream.info.frame_estimate, job.start, job.every, job.frames)
        paths = [flow_file(job, k, job.digits or _digits(header)) for k in range(result.pairs)]
        _normalize(job, result, paths, header, on_note or (lambda text: None), on_warning)
        writer = VideoWriter(job.viz, result.fps)
        try:
            _encode(job, result, paths, stream, writer, on_advance)
        except BaseException:
            writer.abort()
            raise
    finally:
        stream.close()


def _normalize(job: VideoJob, result: VideoResult, paths: list, header: int, note, warn) -> None:
    from flowcli.io import read_flow
    from flowcli.streaming import sample_magnitudes, samples_percentile

    t0 = time.perf_counter()
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(2, f"flow file missing ({len(missing)} of {len(paths)}; with several machines "
                                   f"--flo-dir must be on a file system they all share)", str(missing[0]))
    if job.max_flow is None:
        stride = max(1, -(-header // SAMPLE_PAIRS)) if header else 1
        value = samples_percentile([sample_magnitudes(read_flow(p)[0]) for p in paths[::stride]], job.percentile)
        result.max_flow = value if value > 0 else 1.0
        note(f"normalization: {job.percentile:g}th percentile of {len(paths[::stride])} sampled pairs = "
             f"{result.max_flow:.2f} px")
    if result.fps <= 0:
        (warn or note)(f"{job.clip}: frame rate unknown; writing {DEFAULT_FPS:g} fps")
        result.fps = DEFAULT_FPS
    result.first_pass_seconds = time.perf_counter() - t0


def _encode(job: VideoJob, result: VideoResult, paths: list, stream, writer: VideoWriter, on_advance) -> None:
    from flowcli.io import read_flow
    from flowcli.viz import flow_to_color

    frames = stream.frames if job.side_by_side else None
    for path in paths:
        color = flow_to_color(read_flow(path)[0], max_flow=result.max_flow)
        writer.write(_compose(job, next(frames)[1] if frames is not None else None, color, result.max_flow))
        if on_advance:
            on_advance(1)
    writer.close()
