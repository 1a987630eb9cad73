"""flowcli.videoio: streaming frames out of a clip, and its errors."""
from __future__ import annotations


import numpy as np
import pytest

from flowcli.videoio import open_video
from tests.support import H, W, write_clip


def test_open_video_streams_frames(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", n=5, fps=9)
    stream = open_video(clip)
    assert (stream.info.width, stream.info.height, stream.info.fps) == (W, H, 9.0)
    frames = list(stream.frames)
    assert [i for i, _ in frames] == [0, 1, 2, 3, 4]
    assert frames[0][1].shape == (H, W, 3) and frames[0][1].dtype == np.uint8
    sel = open_video(clip, start=1, every=2, frames=2, resize=48)
    got = list(sel.frames)
    assert [i for i, _ in got] == [1, 3] and got[0][1].shape == (32, 48, 3)
    stream = open_video(clip)
    stream.close()  # closing an unread stream ends ffmpeg


def test_open_video_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_video(tmp_path / "missing.mp4")
    (tmp_path / "e.mp4").write_bytes(b"")
    with pytest.raises(ValueError, match="e.mp4: empty"):
        open_video(tmp_path / "e.mp4")
    (tmp_path / "x.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(ValueError, match="x.mp4"):
        open_video(tmp_path / "x.mp4")
