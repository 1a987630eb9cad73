"""Clips as phones and other tools make them, written with the ffmpeg binary of imageio-ffmpeg: a variable frame rate
(each frame shown for its own time), a rotation flag, 10-bit HEVC, an animated GIF, an audio-only file; and the frames
that went in, to compare with what comes out."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Sequence

import numpy as np

from tests.support import H, W, textured_image

#: How long each frame of :func:`write_vfr_clip`'s default clip is shown (s): uneven, as a phone records when the scene
#: gets darker or the processor busier. A reader converting to a constant rate duplicates the long ones.
VFR_DURATIONS = (0.04, 0.30, 0.04, 0.50, 0.12, 0.20)


def ffmpeg(*args) -> None:
    """Run the ffmpeg of imageio-ffmpeg (quiet; an error fails the test with ffmpeg's message)."""
    import imageio_ffmpeg

    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *map(str, args)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, f"ffmpeg failed: {done.stderr}"


def source_frames(n: int, h: int = H, w: int = W, step: int = 8) -> list[np.ndarray]:
    """``n`` distinct frames of a texture panning ``step`` px per frame (distinct enough to tell apart after lossy
    coding)."""
    base = textured_image(h, w + step * n, seed=11)
    return [np.ascontiguousarray(base[:, step * i:step * i + w]) for i in range(n)]


def write_vfr_clip(path: Path, durations: Sequence[float] = VFR_DURATIONS, *, h: int = H, w: int = W,
                   codec: Sequence[str] = ("-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p")) -> list[np.ndarray]:
    """A variable-frame-rate clip of ``len(durations)`` distinct frames, frame k shown for ``durations[k]`` s (the
    concat demuxer's per-file durations, frames passed through unchanged). Returns the frames that went in."""
    from flowcli.io import write_image

    frames = source_frames(len(durations), h, w)
    work = path.parent / f"{path.name}_frames"
    work.mkdir()
    lines = []
    for k, (frame, seconds) in enumerate(zip(frames, durations)):
        write_image(work / f"{k:03d}.png", frame)
        lines += [f"file '{work / f'{k:03d}.png'}'", f"duration {seconds}"]
    (work / "list.txt").write_text("\n".join(lines) + "\n")
    from flowcli.videoio import passthrough_options

    ffmpeg("-f", "concat", "-safe", "0", "-i", work / "list.txt", *passthrough_options(), *codec, path)
    return frames


def closest(frame: np.ndarray, frames: Sequence[np.ndarray]) -> tuple[int, float]:
    """(index, mean absolute difference) of the frame of ``frames`` most like ``frame``."""
    diffs = [float(np.abs(frame.astype(np.int16) - f.astype(np.int16)).mean()) for f in frames]
    k = int(np.argmin(diffs))
    return k, diffs[k]
