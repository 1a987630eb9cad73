"""Streaming inference for batch jobs: batches of pairs in, flows out in order, the recipe's CPU part overlapping the
network.

:func:`infer_batches` is the engine of the folder and video jobs: each batch of same-size pairs goes through the
network (:meth:`flowcli.api.Estimator.candidates`), and the recipe's CPU part (fusion, refinement:
``estimator.recipe.finish``) runs in worker threads while the next batch is on the GPU, so throughput is bound by the
slower side rather than the sum. On a CPU device both parts share the cores, so it runs inline. :func:`stream_flow`
turns a stream of video frames into a stream of consecutive-pair flows; :func:`flow_percentile` is the first pass that
fixes one color normalization for a whole clip.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from flowcli.threads import prefetch

__all__ = ["FirstPass", "PairJob", "flow_percentile", "infer_batches", "replay_flow", "sample_magnitudes",
           "samples_percentile", "stream_flow"]


class _Inline:
    """A stand-in for a thread pool that runs each call at once (CPU devices: no overlap to gain)."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future, as a pool would
            fut.set_exception(exc)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _finish_all(recipe, imgs1, prepared, candidates) -> list:
    out = []
    for a, (b, offset), c in zip(imgs1, prepared, candidates):
        try:
            out.append(recipe.finish(a, b, c, offset))
        except (ValueError, RuntimeError) as exc:  # this pair fails, the others go on
            out.append(exc)
    return out


def infer_batches(estimator, batches: Iterable[tuple[Sequence[Any], Sequence[np.ndarray], Sequence[np.ndarray]]], *,
                  overlap: Optional[bool] = None) -> Iterator[tuple[Any, "np.ndarray | BaseException"]]:
    """Yield ``(item, flow)`` for each pair of ``batches`` (``(items, imgs1, imgs2)`` of same-size HxWx3 uint8 RGB
    images), in order. ``flow`` is an HxWx2 float32 array, or the exception that failed that pair alone in the recipe's
    CPU part; an exception of the network's part fails the whole batch and is yielded for each of its items.

    ``overlap`` (default: on CUDA devices) runs the CPU part in worker threads beside the next batch's network pass;
    at most two batches are in flight, so memory stays bounded.
    """
    if overlap is None:
        overlap = estimator.device.type == "cuda" and not estimator.recipe.is_plain
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, (os.cpu_count() or 2) - 1)),
                              thread_name_prefix="recipe") if overlap else _Inline()
    pending: deque = deque()
    try:
        for items, imgs1, imgs2 in batches:
            try:
                prepared = [estimator.recipe.prepare(a, b) for a, b in zip(imgs1, imgs2)]
                candidates = estimator.candidates(imgs1, [b for b, _ in prepared])
            except (RuntimeError, ValueError) as exc:  # e.g. out of memory: these pairs fail, the job goes on
                done: Future = Future()
                done.set_result([exc] * len(items))
                pending.append((items, done))
            else:
                pending.append((items, pool.submit(_finish_all, estimator.recipe, imgs1, prepared, candidates)))
            while len(pending) > (1 if overlap else 0):
                yield from _drain(pending.popleft())
        while pending:
            yield from _drain(pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _drain(entry) -> Iterator[tuple[Any, Any]]:
    items, fut = entry
    yield from zip(items, fut.result())


@dataclass
class PairJob:
    """One pair from a frame stream: its position, the source frame indices, frame 1 and the flow (HxWx2)."""

    index: int
    source: tuple[int, int]
    frame1: np.ndarray
    flow: np.ndarray


def _pair_batches(frames: Iterable[tuple[int, np.ndarray]], batch_size: int):
    """Batches ``(items, imgs1, imgs2)`` of consecutive frame pairs; an item is ``((src1, src2), frame1)``."""
    prev = None
    batch: list = []
    for item in frames:
        if prev is not None:
            batch.append((prev, item))
            if len(batch) >= batch_size:
                yield [((a[0], b[0]), a[1]) for a, b in batch], [a[1] for a, _ in batch], [b[1] for _, b in batch]
                batch = []
        prev = item
    if batch:
        yield [((a[0], b[0]), a[1]) for a, b in batch], [a[1] for a, _ in batch], [b[1] for _, b in batch]


def stream_flow(estimator, frames: Iterable[tuple[int, np.ndarray]], *, batch_size: int = 4,
                prefetch_frames: Optional[int] = None) -> Iterator[PairJob]:
    """Flow between consecutive frames of a stream, computed in batches on the estimator's device.

    ``frames`` yields ``(source_index, HxWx3 uint8 RGB)``; it is decoded in a background thread at most
    ``prefetch_frames`` (default ``2 * batch_size``) frames ahead. Yields :class:`PairJob` in order; memory holds a
    bounded number of frames whatever the stream's length. A pair that fails raises.
    """
    batch_size = max(1, int(batch_size))
    source = prefetch(frames, maxsize=prefetch_frames or 2 * batch_size, name="decode")
    try:
        for k, ((src, frame1), flow) in enumerate(infer_batches(estimator, _pair_batches(source, batch_size))):
            if isinstance(flow, BaseException):
                raise flow
            yield PairJob(k, src, frame1, flow)
    finally:
        source.close()


@dataclass
class FirstPass:
    """Result of :func:`flow_percentile`: the magnitude ``value``, the ``pairs`` looked at, and when the pass saw
    every pair and they fit the memory budget, their ``flows`` (so that the main pass need not recompute them)."""

    value: float
    pairs: int
    flows: Optional[list[np.ndarray]] = None


def flow_percentile(estimator, frames: Iterable[tuple[int, np.ndarray]], *, percentile: float = 99.0,
                    stride: int = 1, batch_size: int = 4, pixel_step: int = 4,
                    keep_bytes: int = 0) -> FirstPass:
    """A first pass for one color normalization over a whole clip: the ``percentile`` of the flow magnitude over the
    pairs ``(k, k+1)`` with ``k % stride == 0`` (every ``pixel_step``-th pixel in each direction).

    With ``stride == 1`` the pass computes every pair; up to ``keep_bytes`` of those flows are kept and returned (a
    short clip is then computed once, not twice). Beyond the budget they are dropped, so memory stays bounded.
    ``value`` is 0.0 when no pair was seen.
    """
    def sampled() -> Iterator[tuple[list, list, list]]:
        prev, batch = None, []
        for k, (_, frame) in enumerate(frames):
            if prev is not None and (k - 1) % stride == 0:
                batch.append((prev, frame))
                if len(batch) >= batch_size:
                    yield [None] * len(batch), [a for a, _ in batch], [b for _, b in batch]
                    batch = []
            prev = frame
        if batch:
            yield [None] * len(batch), [a for a, _ in batch], [b for _, b in batch]

    samples: list[np.ndarray] = []
    kept: Optional[list[np.ndarray]] = [] if stride == 1 and keep_bytes > 0 else None
    kept_bytes = 0
    source = prefetch(sampled(), maxsize=2, name="decode-sample")
    try:
        for _, flow in infer_batches(estimator, source):
            if isinstance(flow, BaseException):
                raise flow
            samples.append(sample_magnitudes(flow, pixel_step))
            if kept is not None:
                kept_bytes += flow.nbytes
                if kept_bytes > keep_bytes:
                    kept = None  # over budget: the main pass recomputes
                else:
                    kept.append(flow)
    finally:
        source.close()
    return FirstPass(samples_percentile(samples, percentile), len(samples), kept)


def sample_magnitudes(flow: np.ndarray, pixel_step: int = 4) -> np.ndarray:
    """The finite flow magnitudes of every ``pixel_step``-th pixel in each direction (what a first pass keeps of a
    pair)."""
    sub = flow[::pixel_step, ::pixel_step]
    mag = np.hypot(sub[..., 0], sub[..., 1]).ravel()
    return mag[np.isfinite(mag)]


def samples_percentile(samples: Sequence[np.ndarray], percentile: float) -> float:
    """The ``percentile`` of :func:`sample_magnitudes` of several pairs taken together (0.0 when there are none), the
    value :func:`flow_percentile` returns for the same pairs."""
    if not samples or not sum(s.size for s in samples):
        return 0.0
    return float(np.percentile(np.concatenate(samples), percentile))


def replay_flow(frames: Iterable[tuple[int, np.ndarray]], flows: Sequence[np.ndarray]) -> Iterator[PairJob]:
    """:func:`stream_flow` for flows computed earlier (a first pass that kept them): pairs the stream's consecutive
    frames with ``flows`` in order. Raises RuntimeError when the counts differ."""
    source = prefetch(frames, maxsize=4, name="decode")
    prev = None
    k = 0
    try:
        for item in source:
            if prev is not None:
                if k >= len(flows):
                    raise RuntimeError(f"the clip gave more pairs than the first pass ({len(flows)})")
                yield PairJob(k, (prev[0], item[0]), prev[1], flows[k])
                k += 1
            prev = item
    finally:
        source.close()
    if k != len(flows):
        raise RuntimeError(f"the clip gave {k} pairs, the first pass {len(flows)}")
