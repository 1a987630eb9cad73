"""Batch and streaming plumbing behind ``flowcli dir`` and ``flowcli video``, usable from Python too.

* Frames: natural sort (``frame2`` before ``frame10``), listing a folder, consecutive pairs, pairs files, the
  output name of a pair, sharding (``index % n == i``).
* Threads: :func:`prefetch` runs an iterator in a thread behind a bounded queue; :class:`Worker` runs jobs in a
  thread behind a bounded queue. Both stop cleanly on errors and interrupts, so decoding, inference and encoding
  overlap while memory stays bounded (a few frames per queue, whatever the clip's length).
* Video: :func:`open_video` streams frames out of ffmpeg (imageio-ffmpeg) one at a time; :class:`VideoWriter`
  encodes frames into a file that appears atomically; :func:`stream_flow` turns a frame stream into a stream of
  ``(index, frame1, flow)`` with batched inference.

No click or rich here: errors are exceptions with one-line messages naming the file.
"""
from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from flowcli.io.atomic import atomic_path
from flowcli.io.image import IMAGE_EXTENSIONS

__all__ = [
    "PairJob", "VideoInfo", "VideoWriter", "Worker", "consecutive_pairs", "list_frames", "natural_key",
    "natural_sorted", "open_video", "output_names", "parse_shard", "prefetch", "read_pairs_file",
    "resized_size", "shard", "stream_flow", "flow_percentile", "FirstPass", "replay_flow",
]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")


# ---- frames and pairs ------------------------------------------------------------------------------------------
_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str | os.PathLike) -> tuple:
    """Sort key putting ``frame2`` before ``frame10``: digit runs compare as numbers, text case-insensitively.

    Ties (``frame01`` vs ``frame1``) are broken by the plain name so that the order is total and stable.
    """
    text = str(name)
    parts = _DIGITS.split(text)
    key = tuple((0, int(p), "") if i % 2 else (1, 0, p.lower()) for i, p in enumerate(parts) if p != "")
    return key + ((2, 0, text),)


def natural_sorted(items: Iterable) -> list:
    """``sorted`` with :func:`natural_key` on each item's name (paths compare by their file name)."""
    return sorted(items, key=lambda p: natural_key(Path(p).name if isinstance(p, Path) else p))


def list_frames(folder: str | os.PathLike, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """The image files directly in ``folder`` (by extension, case-insensitive), in natural order.

    Hidden files (``.name``, e.g. the temporary files of an interrupted write) are ignored.
    """
    d = Path(folder)
    if not d.is_dir():
        raise NotADirectoryError(f"{d}: not a folder")
    exts = {e.lower() for e in extensions}
    files = [p for p in d.iterdir() if p.is_file() and p.suffix.lower() in exts and not p.name.startswith(".")]
    return natural_sorted(files)


def consecutive_pairs(frames: Sequence[Path]) -> list[tuple[Path, Path]]:
    """``[(f0, f1), (f1, f2), ...]``."""
    return list(zip(frames[:-1], frames[1:]))


def read_pairs_file(path: str | os.PathLike, base: Optional[str | os.PathLike] = None) -> list[tuple[Path, Path]]:
    """Read a pairs file: one pair per line, two paths separated by whitespace (or a comma); blank lines and
    ``#`` comments are skipped. Relative paths are taken relative to ``base`` (default: the file's folder).

    Raises ValueError naming the file and line for a line that is not two paths.
    """
    p = Path(path)
    root = Path(base) if base is not None else p.parent
    pairs = []
    with open(p, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = [x for x in re.split(r"[,\s]+", line) if x]
            if len(fields) != 2:
                raise ValueError(f"{p}:{lineno}: expected two image paths, got {len(fields)} field(s): {line!r}")
            a, b = (Path(x) if Path(x).is_absolute() else root / x for x in fields)
            pairs.append((a, b))
    if not pairs:
        raise ValueError(f"{p}: no pairs in the file")
    return pairs


def output_names(pairs: Sequence[tuple[Path, Path]], ext: str, base: Optional[Path] = None) -> list[Path]:
    """Relative output paths mirroring the inputs: the first frame's path (relative to ``base`` when it lies
    inside it, else its bare name) with ``ext`` as suffix. Pairs that would collide (the same first frame
    paired twice) are named ``<frame1>_<frame2><ext>`` instead."""

    def rel(p: Path) -> Path:
        if base is not None:
            try:
                return p.resolve().relative_to(base.resolve())
            except ValueError:
                pass
        return Path(p.name)

    names = [rel(a).with_suffix(ext) for a, _ in pairs]
    counts: dict[Path, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [n if counts[n] == 1 else n.with_name(f"{rel(a).stem}_{Path(b).stem}{ext}")
            for n, (a, b) in zip(names, pairs)]


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> ``(i, n)``; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise ValueError(f"shard must look like i/n (e.g. 0/4), got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or i >= n:
        raise ValueError(f"shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def shard(items: Sequence, i: int, n: int) -> list:
    """The items whose index ``k`` satisfies ``k % n == i`` (interleaved, so shards get similar work)."""
    return [x for k, x in enumerate(items) if k % n == i]


# ---- threads ---------------------------------------------------------------------------------------------------
_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put with a timeout loop so that a stopped consumer never leaves the producer blocked forever."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(iterable: Iterable, maxsize: int = 4, name: str = "prefetch") -> Iterator:
    """Iterate ``iterable`` in a background thread, at most ``maxsize`` items ahead of the consumer.

    Exceptions raised by the iterable are re-raised in the consumer at the point they occurred. Closing the
    returned generator early (break, error, KeyboardInterrupt) stops the thread and closes the iterable.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()

    def run() -> None:
        it = iter(iterable)
        try:
            for item in it:
                if not _put(q, item, stop):
                    break
            else:
                _put(q, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failure(exc), stop)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def consume() -> Iterator:
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            thread.join(timeout=10)

    return consume()


class _ClosesOnExit:
    """``with`` support for objects with ``close()`` (finish the work) and ``abort()`` (drop it): a block that
    ends normally closes, one that raises aborts, so an interrupted job never leaves a half-written result."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Worker(_ClosesOnExit):
    """One background thread running submitted jobs in order, behind a bounded queue.

    ``submit(fn, *args)`` blocks when ``maxsize`` jobs are waiting (back-pressure keeps memory bounded) and
    re-raises the first error a job raised. ``close()`` waits for the remaining jobs and re-raises a job's
    error; ``abort()`` drops the waiting jobs and waits only for the one running. As a context manager it
    closes on success and aborts on error.
    """

    def __init__(self, maxsize: int = 4, name: str = "worker") -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                job = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if job is _END:
                return
            if self._stop.is_set() or self._error is not None:
                continue  # aborted or failed: drain without running
            fn, args = job
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the submitting thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            self._stop.set()
            raise exc

    def submit(self, fn: Callable, *args: Any) -> None:
        self._raise()
        if not _put(self._q, (fn, args), self._stop):
            raise RuntimeError("worker was stopped")

    def close(self) -> None:
        _put(self._q, _END, self._stop)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()



# ---- video -----------------------------------------------------------------------------------------------------
@dataclass
class VideoInfo:
    """What ffmpeg says about a clip: frame size after any resize, fps, duration and the estimated frame count."""

    path: Path
    width: int
    height: int
    fps: float
    duration: float
    source_size: tuple[int, int] = (0, 0)
    codec: str = ""

    @property
    def frame_estimate(self) -> int:
        """Frames in the clip by fps x duration (ffmpeg's header; may be off by a frame or two, 0 if unknown)."""
        return int(round(self.fps * self.duration)) if self.fps > 0 and self.duration > 0 else 0


def resized_size(width: int, height: int, long_side: Optional[int]) -> tuple[int, int]:
    """The (width, height) with the long side scaled to ``long_side`` (aspect kept, both rounded to even)."""
    if not long_side:
        return width, height
    s = long_side / max(width, height)
    return max(2, int(round(width * s / 2)) * 2), max(2, int(round(height * s / 2)) * 2)


@dataclass
class _Selection:
    start: int = 0
    every: int = 1
    frames: Optional[int] = None

    def indices_wanted(self, index: int) -> tuple[bool, bool]:
        """(take this source frame?, is the selection finished after it?)"""
        if index < self.start or (index - self.start) % self.every:
            return False, False
        k = (index - self.start) // self.every
        if self.frames is not None and k >= self.frames:
            return False, True
        return True, self.frames is not None and k + 1 >= self.frames


@dataclass
class VideoStream:
    """An open clip: ``info`` and an iterator of ``(source_index, HxWx3 uint8 RGB frame)``."""

    info: VideoInfo
    frames: Iterator[tuple[int, np.ndarray]] = field(repr=False)
    _decoder: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Stop decoding (ends the ffmpeg process), whether or not the frames were iterated."""
        for gen in (self.frames, self._decoder):
            try:
                gen.close()
            except (AttributeError, ValueError):  # None, or still running in another thread (it closes itself)
                pass


def _ffmpeg_error(path: Path, exc: BaseException) -> ValueError:
    # imageio-ffmpeg's messages carry ffmpeg's whole log; keep the telling line
    text = str(exc)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    telling = next((ln for ln in reversed(lines) if "Invalid data" in ln or "moov atom" in ln
                    or "No such file" in ln or "does not contain any stream" in ln), None)
    if telling is None:
        telling = lines[0] if lines else type(exc).__name__
    return ValueError(f"{path}: cannot decode as a video ({telling[:200]})")


def open_video(path: str | os.PathLike, *, start: int = 0, every: int = 1, frames: Optional[int] = None,
               resize: Optional[int] = None) -> VideoStream:
    """Open a clip for streaming: frames are decoded by an ffmpeg process one at a time, never all at once.

    ``start``: first source frame (0-based); ``every``: keep every N-th frame from there; ``frames``: stop after
    that many kept frames; ``resize``: scale so that the long side has this many pixels (done by ffmpeg).
    Raises FileNotFoundError for a missing file and ValueError (one line naming it) for a file ffmpeg cannot
    read or that holds no video frames.
    """
    import imageio_ffmpeg

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(2, "no such video file", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: is a folder, not a video file")
    if p.stat().st_size == 0:
        raise ValueError(f"{p}: empty file, not a video")
    if every < 1 or start < 0 or (frames is not None and frames < 1):
        raise ValueError(f"need start >= 0, every >= 1 and frames >= 1, got {start}, {every}, {frames}")
    output_params = []
    if resize:
        # -2 keeps the aspect ratio with an even size; area filter for clean downscaling
        side = int(resize)
        output_params = ["-vf", f"scale='if(gte(iw,ih),{side},-2)':'if(gte(iw,ih),-2,{side})':flags=area"]
    gen = imageio_ffmpeg.read_frames(str(p), output_params=output_params)
    try:
        meta = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError) as exc:
        gen.close()
        raise _ffmpeg_error(p, exc) from None
    if not meta.get("size") or not all(meta["size"]):
        gen.close()
        raise ValueError(f"{p}: no video stream")
    w, h = (int(x) for x in meta["size"])
    info = VideoInfo(path=p, width=w, height=h, fps=float(meta.get("fps") or 0.0),
                     duration=float(meta.get("duration") or 0.0),
                     source_size=tuple(int(x) for x in meta.get("source_size") or (w, h)),
                     codec=str(meta.get("codec", "")))
    sel = _Selection(start, every, frames)

    def frames_iter() -> Iterator[tuple[int, np.ndarray]]:
        try:
            for index, raw in enumerate(gen):
                take, done = sel.indices_wanted(index)
                if take:
                    # copy: the bytes object is immutable, and consumers may write into frames
                    yield index, np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
                if done:
                    return
        except RuntimeError as exc:
            raise _ffmpeg_error(p, exc) from None
        finally:
            gen.close()

    return VideoStream(info=info, frames=frames_iter(), _decoder=gen)


class VideoWriter(_ClosesOnExit):
    """Encode RGB frames (all one size) into ``path`` with ffmpeg (H.264 for .mp4/.mkv/.mov); the file appears
    only when :meth:`close` succeeds, so an error or interrupt leaves no partial video.

    Odd sizes are padded by one pixel (edge copy) since yuv420p needs even sizes.
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, quality: float = 7.0) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.quality = quality
        if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"{self.path}: unsupported video extension {self.path.suffix or '(none)'!r} "
                             f"(supported: {', '.join(VIDEO_EXTENSIONS)})")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(2, "output folder does not exist", str(self.path.parent))
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()
        self._gen = None
        self._size: Optional[tuple[int, int]] = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        import imageio_ffmpeg

        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            h, w = rgb.shape[:2]
        if self._gen is None:
            self._size = (w, h)
            codec = "libvpx-vp9" if self.path.suffix.lower() == ".webm" else "libx264"
            self._gen = imageio_ffmpeg.write_frames(str(self._tmp), (w, h), fps=self.fps, codec=codec,
                                                    quality=self.quality, macro_block_size=1,
                                                    ffmpeg_log_level="error")
            self._gen.send(None)
        elif (w, h) != self._size:
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's "
                             f"{self._size[0]}x{self._size[1]}")
        self._gen.send(np.ascontiguousarray(rgb, dtype=np.uint8))
        self.frames += 1

    def close(self) -> None:
        """Finish the file and move it into place (no frames written: nothing is created)."""
        try:
            if self._gen is not None:
                self._gen.close()
            if self.frames == 0:
                raise ValueError(f"{self.path}: no frames to write")
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._atomic.__exit__(None, None, None)

    def abort(self) -> None:
        """Stop encoding and remove the temporary file."""
        try:
            if self._gen is not None:
                self._gen.close()
        except Exception:  # noqa: BLE001 - the partial file is deleted anyway
            pass
        finally:
            self._gen = None
            tmp = self._tmp
            if tmp.exists():
                tmp.unlink()



# ---- streaming inference ---------------------------------------------------------------------------------------
@dataclass
class PairJob:
    """One pair from a frame stream: its position, the source frame indices, frame 1 and the flow (HxWx2)."""

    index: int
    source: tuple[int, int]
    frame1: np.ndarray
    flow: np.ndarray


def stream_flow(estimator, frames: Iterable[tuple[int, np.ndarray]], *, batch_size: int = 4,
                prefetch_frames: Optional[int] = None) -> Iterator[PairJob]:
    """Flow between consecutive frames of a stream, computed in batches on the estimator's device.

    ``frames`` yields ``(source_index, HxWx3 uint8 RGB)``; it is decoded in a background thread at most
    ``prefetch_frames`` (default ``2 * batch_size``) frames ahead. Yields :class:`PairJob` in order; memory
    holds a bounded number of frames whatever the stream's length.
    """
    import torch

    batch_size = max(1, int(batch_size))
    source = prefetch(frames, maxsize=prefetch_frames or 2 * batch_size, name="decode")
    prev: Optional[tuple[int, np.ndarray]] = None
    pending: list[tuple[tuple[int, np.ndarray], tuple[int, np.ndarray]]] = []
    count = 0

    def run(batch) -> list[PairJob]:
        nonlocal count
        t1 = torch.from_numpy(np.stack([a[1] for a, _ in batch]))
        t2 = torch.from_numpy(np.stack([b[1] for _, b in batch]))
        flows = estimator.flow_tensor(t1, t2).permute(0, 2, 3, 1).float().cpu().numpy()
        jobs = []
        for (a, b), fl in zip(batch, flows):
            jobs.append(PairJob(count, (a[0], b[0]), a[1], np.ascontiguousarray(fl)))
            count += 1
        return jobs

    try:
        for item in source:
            if prev is not None:
                pending.append((prev, item))
                if len(pending) >= batch_size:
                    yield from run(pending)
                    pending = []
            prev = item
        if pending:
            yield from run(pending)
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
    """A first pass for one color normalization over a whole clip: the ``percentile`` of the flow magnitude
    over the pairs ``(k, k+1)`` with ``k % stride == 0`` (every ``pixel_step``-th pixel in each direction).

    With ``stride == 1`` the pass computes every pair; up to ``keep_bytes`` of those flows are kept and returned
    (a short clip is then computed once, not twice). Beyond the budget they are dropped, so memory stays bounded.
    ``value`` is 0.0 when no pair was seen.
    """
    import torch

    def sampled() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        prev = None
        for k, (_, frame) in enumerate(frames):
            if prev is not None and (k - 1) % stride == 0:
                yield prev, frame
            prev = frame

    samples: list[np.ndarray] = []
    kept: Optional[list[np.ndarray]] = [] if stride == 1 and keep_bytes > 0 else None
    kept_bytes = 0
    used = 0
    batch: list[tuple[np.ndarray, np.ndarray]] = []

    def run() -> None:
        nonlocal used, kept, kept_bytes
        flows = estimator.flow_tensor(torch.from_numpy(np.stack([a for a, _ in batch])),
                                      torch.from_numpy(np.stack([b for _, b in batch])))
        flows = flows.float().cpu().numpy()
        sub = flows[:, :, ::pixel_step, ::pixel_step]
        mag = np.hypot(sub[:, 0], sub[:, 1]).ravel()
        samples.append(mag[np.isfinite(mag)])
        used += len(batch)
        if kept is not None:
            kept_bytes += flows.nbytes
            if kept_bytes > keep_bytes:
                kept = None  # over budget: the main pass recomputes
            else:
                kept.extend(np.ascontiguousarray(f.transpose(1, 2, 0)) for f in flows)

    source = prefetch(sampled(), maxsize=2 * batch_size, name="decode-sample")
    try:
        for pair in source:
            batch.append(pair)
            if len(batch) >= batch_size:
                run()
                batch = []
        if batch:
            run()
    finally:
        source.close()
    if not samples or not sum(s.size for s in samples):
        return FirstPass(0.0, used, kept)
    return FirstPass(float(np.percentile(np.concatenate(samples), percentile)), used, kept)


def replay_flow(frames: Iterable[tuple[int, np.ndarray]], flows: Sequence[np.ndarray]) -> Iterator[PairJob]:
    """:func:`stream_flow` for flows computed earlier (a first pass that kept them): pairs the stream's
    consecutive frames with ``flows`` in order. Raises RuntimeError when the counts differ."""
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
