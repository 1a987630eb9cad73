"""The folder job behind ``flowcli dir``: flow for every consecutive pair of a folder (or the pairs of a file).

:func:`plan_folder` lists the pairs with their output paths and refuses, before any work, outputs that would replace
an input or each other; :func:`pending` drops the pairs a previous run finished (resume); :func:`run_folder` reads
frames in a background thread, runs the estimator in same-size batches and writes in another thread. Every output is
written atomically, so an interrupted run leaves only complete files. A frame that cannot be read fails only the
pairs that need it.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from flowcli.errors import InputError, OutputCollisionError
from flowcli.frames import consecutive_pairs, list_frames, output_names, read_pairs_file, shard, skipped_images
from flowcli.threads import Worker, prefetch

__all__ = ["FORMATS", "FolderItem", "FolderResult", "merge_results", "pending", "plan_folder", "run_folder"]

FORMATS = ("flo", "png", "pfm", "npy", "npz")


@dataclass
class FolderItem:
    """One pair to compute: its position in the job, input paths, output paths."""

    index: int
    frame1: Path
    frame2: Path
    out: Path
    viz: Optional[Path]


@dataclass
class FolderResult:
    """What a run did: ``written`` pair indices, ``failures`` (index -> (item, message)), the time it took."""

    written: list[int] = field(default_factory=list)
    failures: dict[int, tuple[FolderItem, str]] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self, pairs: int, skipped: int, output: str) -> dict:
        """The job's summary as plain JSON values (``pairs`` in the job, ``skipped`` as done before)."""
        return {"pairs": pairs, "written": len(self.written), "skipped": skipped, "failed": len(self.failures),
                "output": str(output), "seconds": round(self.seconds, 3),
                "failures": [{"frame1": str(it.frame1), "frame2": str(it.frame2), "error": msg}
                             for it, msg in sorted(self.failures.values(), key=lambda f: f[0].index)]}


def merge_results(parts: Sequence[FolderResult]) -> FolderResult:
    """One result from the results of several processes that shared a job (``flowcli dir`` under torchrun): the
    pairs written and failed by any, in the job's order; ``seconds`` is the slowest part's (they ran side by side)."""
    out = FolderResult(seconds=max((p.seconds for p in parts), default=0.0))
    out.written = sorted(i for p in parts for i in p.written)
    out.failures = dict(sorted((k, v) for p in parts for k, v in p.failures.items()))
    return out


def plan_folder(frames: Optional[str | os.PathLike], *, outdir: str | os.PathLike, pairs_file=None, fmt: str = "flo",
                viz_dir=None, shard_spec: Optional[tuple[int, int]] = None) -> list[FolderItem]:
    """The job's pairs (consecutive frames of ``frames`` in natural order, or the pairs of ``pairs_file``, relative
    to ``frames`` if given) with their output paths, after sharding. Raises :class:`~flowcli.errors.InputError` for
    a pairs file that cannot be read or a folder with fewer than 2 frames, and
    :class:`~flowcli.errors.OutputCollisionError` when an output would replace an input or another output."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if pairs_file:
        try:
            pairs = read_pairs_file(pairs_file, base=frames)
        except ValueError as exc:
            raise InputError(pairs_file, str(exc).split(": ", 1)[-1]) from None
        base = Path(frames) if frames else Path(pairs_file).parent
    else:
        found = list_frames(frames)
        if len(found) < 2:
            left_out = skipped_images(frames)
            unread = (f" ({len(left_out)} in a format not read, e.g. {left_out[0].name}: convert to PNG or JPEG)"
                      if left_out else "")
            raise InputError(frames, f"holds {len(found)} image(s){unread}; at least 2 frames are needed")
        pairs, base = consecutive_pairs(found), Path(frames)
    names = output_names(pairs, "." + fmt, base=base)
    viz_names = output_names(pairs, ".png", base=base) if viz_dir else [None] * len(pairs)
    items = [FolderItem(k, a, b, Path(outdir) / n, Path(viz_dir) / v if viz_dir else None)
             for k, ((a, b), n, v) in enumerate(zip(pairs, names, viz_names))]
    check_collisions([p for pair in pairs for p in pair], items)
    return shard(items, *shard_spec) if shard_spec else items


def check_collisions(inputs: Sequence[Path], items: Sequence[FolderItem]) -> None:
    """Refuse, before any work, an output that is an input or another output (same resolved path)."""
    seen: dict[str, Path] = {os.path.realpath(p): p for p in inputs}
    kind = dict.fromkeys(seen, "input")
    for item in items:
        for out in (item.out, item.viz):
            if out is None:
                continue
            key = os.path.realpath(out)
            if key in seen:
                raise OutputCollisionError(out, seen[key], kind[key])
            seen[key], kind[key] = out, "output"


def _complete(item: FolderItem) -> bool:
    """Whether a previous run finished this pair: the output (and its picture) exist and read back."""
    from flowcli.io import read_flow

    if not item.out.is_file() or item.out.stat().st_size == 0:
        return False
    if item.viz is not None and (not item.viz.is_file() or item.viz.stat().st_size == 0):
        return False
    try:
        read_flow(item.out)
    except (ValueError, OSError):
        return False
    return True


def pending(items: Sequence[FolderItem]) -> list[FolderItem]:
    """The items whose outputs a previous run did not finish (``--resume``)."""
    return [it for it in items if not _complete(it)]


def _one_line(exc: BaseException) -> str:
    # an OSError as "<file>: <problem>" (a full disk: "out/a.flo: No space left on device"), as the CLI words errors
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        return " ".join(f"{exc.filename}: {exc.strerror}".split())
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text or type(exc).__name__


class _Run:
    """The state one :func:`run_folder` call shares between its threads."""

    def __init__(self, on_failure: Optional[Callable[[FolderItem, str], None]], result: FolderResult) -> None:
        self.result = result
        self._lock = threading.Lock()
        self._on_failure = on_failure

    def fail(self, item: FolderItem, message: str) -> None:
        with self._lock:
            if item.index in self.result.failures:
                return
            self.result.failures[item.index] = (item, message)
        if self._on_failure is not None:
            self._on_failure(item, message)

    def load(self, items: Sequence[FolderItem]) -> Iterator[tuple[FolderItem, Optional[np.ndarray], Optional[np.ndarray]]]:
        """(item, img1, img2) for readable pairs, (item, None, None) after failing one; frames shared by consecutive
        pairs are decoded once (a two-entry cache)."""
        from flowcli.io import read_image

        cache: dict[Path, object] = {}
        for item in items:
            for path in (item.frame1, item.frame2):
                if path not in cache:
                    try:
                        cache[path] = read_image(path)
                    except (ValueError, OSError) as exc:
                        cache[path] = exc
            imgs = [cache[item.frame1], cache[item.frame2]]
            for old in [p for p in cache if p not in (item.frame1, item.frame2)]:
                del cache[old]
            bad = next((x for x in imgs if isinstance(x, BaseException)), None)
            if bad is None and imgs[0].shape != imgs[1].shape:
                a, b = imgs
                bad = ValueError(f"{item.frame1} is {a.shape[1]}x{a.shape[0]} but {item.frame2} is "
                                 f"{b.shape[1]}x{b.shape[0]}")
            if bad is not None:
                self.fail(item, _one_line(bad))
                yield item, None, None
            else:
                yield item, imgs[0], imgs[1]

    def write(self, item: FolderItem, flow: np.ndarray, max_flow: Optional[float]) -> None:
        """One pair's outputs, each atomically, the flow file last (its presence is what resume trusts)."""
        from flowcli.io import write_flow, write_image

        try:
            if not np.isfinite(flow).all():
                raise ValueError("the network returned non-finite flow")
            item.out.parent.mkdir(parents=True, exist_ok=True)
            if item.viz is not None:
                from flowcli.viz import flow_to_color

                item.viz.parent.mkdir(parents=True, exist_ok=True)
                write_image(item.viz, flow_to_color(flow, max_flow=max_flow))
            write_flow(item.out, flow)
            with self._lock:
                self.result.written.append(item.index)
        except (ValueError, OSError) as exc:
            self.fail(item, _one_line(exc))


def _batches(entries, batch_size: int, on_advance: Callable[[int], None]):
    """Same-size batches ``(items, imgs1, imgs2)`` of the readable pairs; unreadable ones only advance progress."""
    batch: list = []
    for item, a, b in entries:
        if a is None:
            on_advance(1)
            continue
        if batch and a.shape != batch[0][1].shape:
            yield [e[0] for e in batch], [e[1] for e in batch], [e[2] for e in batch]
            batch = []
        batch.append((item, a, b))
        if len(batch) >= batch_size:
            yield [e[0] for e in batch], [e[1] for e in batch], [e[2] for e in batch]
            batch = []
    if batch:
        yield [e[0] for e in batch], [e[1] for e in batch], [e[2] for e in batch]


def run_folder(estimator, items: Sequence[FolderItem], *, batch_size: int = 4, max_flow: Optional[float] = None,
               on_advance: Optional[Callable[[int], None]] = None,
               on_failure: Optional[Callable[[FolderItem, str], None]] = None,
               result: Optional[FolderResult] = None) -> FolderResult:
    """Compute and write every item: read (background thread) -> estimate in same-size batches
    (:func:`flowcli.streaming.infer_batches`) -> write (background thread). ``on_advance(n)`` is called as pairs are
    computed (or fail), ``on_failure(item, message)`` once per failed pair. A failed pair does not stop the job. On an
    interrupt the writes already queued are finished (they are complete results) before the interrupt propagates; pass
    ``result`` to keep the counts then."""
    from flowcli.streaming import infer_batches

    t0 = time.perf_counter()
    run = _Run(on_failure, result if result is not None else FolderResult())
    advance = on_advance or (lambda n: None)
    loader = prefetch(run.load(items), maxsize=2 * batch_size, name="read-frames")
    writer = Worker(maxsize=2 * batch_size, name="write-flow")
    try:
        for item, flow in infer_batches(estimator, _batches(loader, batch_size, advance)):
            if isinstance(flow, BaseException):
                run.fail(item, _one_line(flow))
            else:
                writer.submit(run.write, item, flow, max_flow)
            advance(1)
    except BaseException:
        loader.close()
        try:
            writer.close()  # finish the writes already queued: they are complete results
        except BaseException:  # noqa: BLE001 - the original error is the one to report
            pass
        run.result.seconds = time.perf_counter() - t0
        raise
    loader.close()
    writer.close()
    run.result.seconds = time.perf_counter() - t0
    return run.result
