"""Video in and out through ffmpeg (the binary of imageio-ffmpeg): :func:`open_video` streams frames one at a time,
never all at once; :class:`VideoWriter` encodes frames into a file that appears atomically, and only once it decodes
to the frames written. Errors are exceptions with one-line messages naming the file; ffmpeg's own log never reaches
the terminal.

Frames are the clip's own decoded frames, each once, in decoding order: no frame-rate conversion (ffmpeg's default
for a raw pipe would duplicate and drop frames of a variable-frame-rate clip, what phones record, to fit the average
rate), so frame ``k`` is the k-th frame the container holds.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import functools
import logging
import math
import os
import re
import signal
import subprocess
import sys
import threading
import weakref
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np

from flowcli.io.atomic import atomic_path
from flowcli.threads import ClosesOnExit

__all__ = ["VIDEO_EXTENSIONS", "VideoInfo", "VideoStream", "VideoWriter", "count_frames", "open_video",
           "passthrough_options"]

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
    # set once the frames ran out: why the clip ended before its header said it would (None: it did not, or no
    # reason was found); the frames before that point are the clip's own
    damage: Optional[str] = None
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
    if any("does not contain any stream" in ln or "matches no streams" in ln for ln in lines):
        return ValueError(f"{path}: no video stream (audio only?)")
    telling = next((ln for ln in reversed(lines) if "Invalid data" in ln or "moov atom" in ln
                    or "No such file" in ln or "does not contain any stream" in ln), None)
    if telling is None:
        telling = lines[0] if lines else type(exc).__name__
    return ValueError(f"{path}: cannot decode as a video ({telling[:200]})")


def _ffmpeg_path(path: str | os.PathLike) -> str:
    """``path`` as ffmpeg must be given it: absolute, so that a name like ``concat:a.mp4`` or ``file:b.mp4`` in the
    current folder is that file, not one of ffmpeg's protocols reading other files."""
    return os.path.abspath(path)


@functools.lru_cache(maxsize=None)
def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg binary in use; (99, 0) for a build that does not say (a git snapshot: recent)."""
    import imageio_ffmpeg

    try:
        text = imageio_ffmpeg.get_ffmpeg_version()
    except Exception:  # noqa: BLE001 - a broken binary fails loudly when it is used
        text = ""
    m = re.search(r"(\d+)\.(\d+)", text or "")
    return (int(m.group(1)), int(m.group(2))) if m else (99, 0)


def passthrough_options() -> list[str]:
    """ffmpeg output options that pass every decoded frame on once, with its own timestamp: no frame-rate conversion
    (``-fps_mode`` since ffmpeg 5.1, ``-vsync`` before; newer releases dropped ``-vsync``)."""
    return ["-fps_mode", "passthrough"] if ffmpeg_version() >= (5, 1) else ["-vsync", "passthrough"]


class _QuietSizeNotice(logging.Filter):
    # imageio-ffmpeg logs a warning whenever the frames it hands over differ in size from the stream's (a --resize,
    # a phone clip's rotation): both are intended here, and the line would break the one-line output on stderr
    def filter(self, record: logging.LogRecord) -> bool:
        return "is different from the source frame size" not in record.getMessage()


@contextlib.contextmanager
def _quiet_size_notice():
    logger, quiet = logging.getLogger("imageio_ffmpeg"), _QuietSizeNotice()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


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
    # Each decoded frame once (see the module docstring), of the stream ffmpeg picks: the default-flagged, largest
    # video stream, never a cover picture (a plain "-map 0:V:0" would take a one-frame preview stored first).
    output_params = passthrough_options()
    if resize:
        # -2 keeps the aspect ratio with an even size; area filter for clean downscaling
        side = int(resize)
        output_params += ["-vf", f"scale='if(gte(iw,ih),{side},-2)':'if(gte(iw,ih),-2,{side})':flags=area"]
    gen = imageio_ffmpeg.read_frames(_ffmpeg_path(p), output_params=output_params)
    try:
        with _quiet_size_notice():
            meta = next(gen)
    except (OSError, RuntimeError, StopIteration, ValueError, LookupError, AttributeError) as exc:
        # LookupError/AttributeError: imageio-ffmpeg's parser on a header it does not expect
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
        decoded = 0
        try:
            for index, raw in enumerate(gen):
                decoded = index + 1
                take, done = sel.indices_wanted(index)
                if take:
                    # copy: the bytes object is immutable, and consumers may write into frames
                    yield index, np.frombuffer(raw, np.uint8).reshape(h, w, 3).copy()
                if done:
                    return
        except RuntimeError as exc:
            if not decoded:
                raise _ffmpeg_error(p, exc) from None
            # ffmpeg gave up part-way: the frames before are the clip's own; the consumer reports the damage
            reason = str(_ffmpeg_error(p, exc)).split("cannot decode as a video (", 1)[-1].rstrip(")")
            stream.damage = f"{p}: damaged: decoding stopped after {decoded} frames ({reason})"
            return
        finally:
            release()
            gen.close()
        stream.damage = _damage(p, decoded, info)

    stream = VideoStream(info=info, frames=frames_iter(), _decoder=gen, _release=release)
    weakref.finalize(stream, release)  # a stream dropped without close() or reading to the end
    return stream


def _damage(path: Path, decoded: int, info: VideoInfo) -> Optional[str]:
    """After the last frame: a clip that decoded to clearly fewer frames than its header promises is decoded once more,
    quietly, to ask ffmpeg why; a complaint (a clip cut short: "Invalid NAL unit size", "partial file") is returned as
    a message naming the clip, so that a damaged file is never taken for a short one. A variable-rate clip (phones)
    also decodes to fewer frames than its nominal rate promises, with no complaint: None."""
    if decoded >= 0.98 * info.frame_estimate:
        return None
    _, problem = count_frames(path)
    if not problem:
        return None
    return f"{path}: damaged: decoding stopped after {decoded} of about {info.frame_estimate} frames ({problem})"


# What ffmpeg's log says when the output's file system refused a write, and the error it stands for.
_WRITE_FAILURES = (("No space left on device", errno.ENOSPC), ("Disk quota exceeded", errno.EDQUOT),
                   ("File too large", errno.EFBIG), ("Read-only file system", errno.EROFS),
                   ("Permission denied", errno.EACCES), ("Input/output error", errno.EIO))
_LOG_LINES = 40  # of ffmpeg's log kept for an error message


class VideoWriter(ClosesOnExit):
    """Encode RGB frames (all one size) into ``path`` with ffmpeg (H.264 for .mp4/.mkv/.mov/.avi/.m4v, VP9 for
    .webm); the file appears only when :meth:`close` succeeds, so an error or interrupt leaves no partial video.

    The frames go to a hidden temporary file beside ``path`` (see :func:`flowcli.io.atomic.atomic_path`; temporary
    files of this target that a killed process left more than a day ago are deleted on opening). :meth:`close` then
    checks ffmpeg's exit status and decodes the file, and renames it only when it holds every frame written: a full
    disk while ffmpeg writes its trailer (which ffmpeg only logs) is an ``OSError`` naming ``path`` (ENOSPC), not an
    unplayable file under the final name. ffmpeg's log is kept for error messages, never shown. A clip this process
    is decoding (:func:`open_video`) is refused as ``path``: :class:`~flowcli.errors.OutputCollisionError`.

    Odd sizes are padded by one pixel (edge copy) since yuv420p needs even sizes.
    """

    def __init__(self, path: str | os.PathLike, fps: float, *, quality: float = 7.0) -> None:
        self.path = Path(path)
        self.fps = float(fps)
        self.quality = quality
        if self.path.suffix.lower() not in VIDEO_EXTENSIONS:
            raise ValueError(f"{self.path}: unsupported video extension {self.path.suffix or '(none)'!r} "
                             f"(supported: {', '.join(VIDEO_EXTENSIONS)})")
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise ValueError(f"{self.path}: frame rate must be a positive number, got {fps}")
        if not 1 <= quality <= 10:
            raise ValueError(f"{self.path}: quality must be within 1-10, got {quality}")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(2, "output folder does not exist", str(self.path.parent))
        with _READING_LOCK:
            reading = os.path.realpath(self.path) in _READING
        if reading:
            from flowcli.errors import OutputCollisionError

            raise OutputCollisionError(self.path, self.path, "input")
        self._atomic = atomic_path(self.path, clean_stale=True)
        self._tmp = self._atomic.__enter__()
        self._proc: Optional[subprocess.Popen] = None
        self._log: collections.deque = collections.deque(maxlen=_LOG_LINES)
        self._log_reader: Optional[threading.Thread] = None
        self._size: Optional[tuple[int, int]] = None
        self._done = False
        self.frames = 0

    def _command(self, w: int, h: int) -> list[str]:
        import imageio_ffmpeg

        webm = self.path.suffix.lower() == ".webm"
        # imageio-ffmpeg's mapping of quality (1-10) to the codecs' own scales, so that outputs look as before
        q = 1 - self.quality / 10.0
        quality = ["-qscale:v", str(int(q * 30) + 1)] if webm else ["-crf", str(int(q * 51))]
        return [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostats", "-loglevel", "error", "-y",
                "-f", "rawvideo", "-vcodec", "rawvideo", "-s", f"{w}x{h}", "-pix_fmt", "rgb24",
                "-r", str(Fraction(self.fps).limit_denominator(100000)), "-i", "-", "-an",
                "-vcodec", "libvpx-vp9" if webm else "libx264", "-pix_fmt", "yuv420p", *quality,
                _ffmpeg_path(self._tmp)]

    def _start(self, w: int, h: int) -> None:
        # a process group of its own: Ctrl-C on a terminal reaches this process only, which stops ffmpeg and removes
        # the file
        kw: dict[str, Any] = ({"creationflags": 0x00000200} if sys.platform.startswith("win")
                              else {"start_new_session": True})
        try:
            self._proc = subprocess.Popen(self._command(w, h), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, **kw)
        except OSError as exc:
            raise RuntimeError(f"{self.path}: cannot start ffmpeg ({exc})") from None
        self._log_reader = threading.Thread(target=self._read_log, args=(self._proc.stderr,), name="ffmpeg-log",
                                            daemon=True)
        self._log_reader.start()

    def _read_log(self, pipe) -> None:
        for raw in iter(pipe.readline, b""):
            line = _log_line(raw.decode("utf-8", "replace"))
            if line:
                self._log.append(line)
        pipe.close()

    def _wait(self) -> int:
        rc = self._proc.wait()
        if self._log_reader is not None:
            self._log_reader.join(timeout=5)
        return rc

    def _encoder_error(self, rc: int) -> BaseException:
        """The error for an ffmpeg that failed with exit status ``rc``: the write error its log names, as an OSError
        naming the target (the temporary name means nothing to the user), else ffmpeg's last words."""
        log = list(self._log)
        for needle, code in _WRITE_FAILURES:
            if any(needle in line for line in log):
                return OSError(code, os.strerror(code), str(self.path))
        if rc < 0:
            name = signal.Signals(-rc).name if -rc in signal.valid_signals() else f"signal {-rc}"
            if name == "SIGXFSZ":
                return OSError(errno.EFBIG, "File too large (over the file size limit, ulimit -f)", str(self.path))
            return RuntimeError(f"{self.path}: ffmpeg was stopped by {name} while encoding")
        last = log[-1] if log else "no message"
        return RuntimeError(f"{self.path}: ffmpeg could not encode the video (exit status {rc}: {last[:200]})")

    def write(self, rgb: np.ndarray) -> None:
        if self._done:
            raise ValueError(f"{self.path}: the video is already closed")
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or not rgb.size:
            raise ValueError(f"{self.path}: frames must be HxWx3 RGB, got shape {rgb.shape}")
        h, w = rgb.shape[:2]
        if h % 2 or w % 2:
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            h, w = rgb.shape[:2]
        if self._proc is None:
            self._size = (w, h)
            self._start(w, h)
        elif (w, h) != self._size:
            raise ValueError(f"{self.path}: frame size {w}x{h} differs from the first frame's "
                             f"{self._size[0]}x{self._size[1]}")
        try:
            self._proc.stdin.write(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
        except OSError:  # a broken pipe: ffmpeg gave up (full disk, ...); its log says why
            self._proc.stdin = _close_quietly(self._proc.stdin)
            raise self._encoder_error(self._wait()) from None
        self.frames += 1

    def close(self) -> None:
        """Finish the file, check that it decodes to every frame written, and move it into place (no frames written:
        ValueError, and nothing is created)."""
        if self._done:
            return
        try:
            if self.frames == 0:
                raise ValueError(f"{self.path}: no frames to write")
            self._proc.stdin = _close_quietly(self._proc.stdin)  # end of input: ffmpeg writes the trailer and exits
            rc = self._wait()
            if rc != 0:
                raise self._encoder_error(rc)
            self._verify()
        except BaseException as exc:
            self._stop()
            self._done = True
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._done = True
        self._atomic.__exit__(None, None, None)

    def _verify(self) -> None:
        """Decode the finished temporary file: it must hold exactly the frames written (a container whose trailer
        did not fit on the disk, a truncated file, reads back short or not at all)."""
        found, problem = count_frames(self._tmp)
        if found != self.frames:
            raise OSError(errno.EIO, f"the encoded video does not read back ({found} of {self.frames} frames"
                                     f"{'; ' + problem if problem else ''}); nothing written", str(self.path))

    def _stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        proc.stdin = _close_quietly(proc.stdin)
        if proc.poll() is None:
            proc.kill()
        self._wait()

    def abort(self) -> None:
        """Stop encoding and remove the temporary file."""
        try:
            self._stop()
        finally:
            self._done = True
            tmp = self._tmp
            if tmp.exists() or tmp.is_symlink():
                tmp.unlink()


def _log_line(text: str) -> str:
    """One line of ffmpeg's log without its "[component @ 0x55d1c0] " prefixes (addresses mean nothing to a user)."""
    return " ".join(re.sub(r"\[[^\]]* @ 0x[0-9a-f]+\]\s*", "", text).split())


def _close_quietly(stream) -> None:
    """Close a pipe whose reader may be gone (a broken pipe has nothing left to report); returns None."""
    if stream is not None:
        try:
            stream.close()
        except OSError:
            pass
    return None


def count_frames(path: str | os.PathLike) -> tuple[int, str]:
    """(frames, problem) of the clip at ``path``: how many frames its first video stream decodes to, each once, and
    ffmpeg's first complaint ("" when it had none). A file ffmpeg cannot open counts 0 frames."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
           "-i", _ffmpeg_path(path), "-map", "0:V:0", *passthrough_options(), "-f", "framecrc", "-"]
    # framecrc: one line per decoded frame (and a few "#" header lines), so counting costs no frame data on a pipe
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True)
    frames = sum(1 for line in proc.stdout.splitlines() if line.strip() and not line.startswith(b"#"))
    complaints = [_log_line(ln) for ln in proc.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    problem = complaints[0][:200] if complaints else ("" if proc.returncode == 0 else f"exit status {proc.returncode}")
    return (frames if proc.returncode == 0 else 0), problem
