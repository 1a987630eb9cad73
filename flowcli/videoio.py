"""Video in and out through ffmpeg (imageio-ffmpeg): :func:`open_video` streams frames one at a time, never all at
once; :class:`VideoWriter` encodes frames into a file that appears atomically. Errors are exceptions with one-line
messages naming the file."""
from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from flowcli.io.atomic import atomic_path
from flowcli.threads import ClosesOnExit

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "VideoStream", "VideoWriter", "open_video"]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")

# Clips this process is decoding (real path -> open streams): a VideoWriter refuses to replace one of them, so that
# `video c.mp4 --viz c.mp4` (or the same through the API) cannot destroy its own input.
_READING: dict[str, int] = {}
_READING_LOCK = threading.Lock()


def _reading(path: Path):
    """Register ``path`` as being decoded; returns the (idempotent) function that unregisters it."""
    key = os.path.realpath(path)
    with _READING_LOCK:
        _READING[key] = _READING.get(key, 0) + 1
    done = []

    def release() -> None:
        with _READING_LOCK:
            if done:
                return
            done.append(True)
            _READING[key] -= 1
            if not _READING[key]:
                del _READING[key]

    return release


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
    _release: Any = field(default=None, repr=False)

    def close(self) -> None:
        """Stop decoding (ends the ffmpeg process), whether or not the frames were iterated."""
        if self._release is not None:
            self._release()
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
    release = _reading(p)

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
            release()
            gen.close()

    stream = VideoStream(info=info, frames=frames_iter(), _decoder=gen, _release=release)
    weakref.finalize(stream, release)  # a stream dropped without close() or reading to the end
    return stream


class VideoWriter(ClosesOnExit):
    """Encode RGB frames (all one size) into ``path`` with ffmpeg (H.264 for .mp4/.mkv/.mov); the file appears
    only when :meth:`close` succeeds, so an error or interrupt leaves no partial video (the frames go to a hidden
    temporary file beside it, see :func:`flowcli.io.atomic.atomic_path`; temporary files of this target that a killed
    process left more than a day ago are deleted on opening). A clip this process is decoding (:func:`open_video`)
    is refused as ``path``: :class:`~flowcli.errors.OutputCollisionError`.

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
        with _READING_LOCK:
            reading = os.path.realpath(self.path) in _READING
        if reading:
            from flowcli.errors import OutputCollisionError

            raise OutputCollisionError(self.path, self.path, "input")
        self._atomic = atomic_path(self.path, clean_stale=True)
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
