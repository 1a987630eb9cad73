"""flowcli.pipeline: the library pieces behind dir and video."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from flowcli.pipeline import (Worker, consecutive_pairs, list_frames, natural_sorted, open_video, output_names,
                              parse_shard, prefetch, read_pairs_file, resized_size, shard)
from tests.cli.conftest import H, W, make_frames, write_clip


def test_natural_sort():
    names = ["frame10.png", "frame2.png", "Frame1.png", "frame1b.png", "frame01.png"]
    assert natural_sorted(names) == ["Frame1.png", "frame01.png", "frame1b.png", "frame2.png", "frame10.png"]


def test_list_frames_ignores_hidden_and_other_files(tmp_path):
    make_frames(tmp_path, 3)
    (tmp_path / ".frame_0000.tmp1.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in list_frames(tmp_path)] == ["frame_0001.png", "frame_0002.png", "frame_0003.png"]
    with pytest.raises(NotADirectoryError):
        list_frames(tmp_path / "notes.txt")


def test_pairs_and_shards():
    pairs = consecutive_pairs([Path(f"f{i}") for i in range(5)])
    assert len(pairs) == 4 and pairs[1] == (Path("f1"), Path("f2"))
    items = list(range(10))
    assert sorted(shard(items, 0, 3) + shard(items, 1, 3) + shard(items, 2, 3)) == items
    assert shard(items, 1, 3) == [1, 4, 7]
    assert parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "-1/2", "a/b", "1"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_output_names_mirror_inputs_and_avoid_collisions(tmp_path):
    a, b, c = (tmp_path / "seq" / n for n in ("a.png", "b.png", "c.png"))
    assert output_names([(a, b), (b, c)], ".flo", base=tmp_path) == [Path("seq/a.flo"), Path("seq/b.flo")]
    assert output_names([(a, b), (a, c)], ".flo") == [Path("a_b.flo"), Path("a_c.flo")]


def test_read_pairs_file(tmp_path):
    f = tmp_path / "pairs.txt"
    f.write_text("# comment\na.png b.png\n\n/abs/c.png,d.png  # trailing\n")
    assert read_pairs_file(f) == [(tmp_path / "a.png", tmp_path / "b.png"), (Path("/abs/c.png"), tmp_path / "d.png")]
    f.write_text("a.png\n")
    with pytest.raises(ValueError, match="pairs.txt:1"):
        read_pairs_file(f)


def test_prefetch_is_bounded_and_propagates_errors():
    produced = []

    def gen():
        for i in range(100):
            produced.append(i)
            yield i

    it = prefetch(gen(), maxsize=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(produced) <= 4  # one handed out, two queued, one waiting to be queued
    it.close()

    def bad():
        yield 1
        raise ValueError("frame 2 is broken")

    it = prefetch(bad())
    assert next(it) == 1
    with pytest.raises(ValueError, match="frame 2"):
        next(it)


def test_worker_runs_in_order_and_reports_errors():
    out = []
    with Worker(maxsize=2) as w:
        for i in range(5):
            w.submit(out.append, i)
    assert out == [0, 1, 2, 3, 4]

    def boom(x):
        raise OSError("disk full")

    w = Worker()
    w.submit(boom, 1)
    with pytest.raises(OSError, match="disk full"):
        w.close()
    assert not any(t.name == "worker" and t.is_alive() for t in threading.enumerate())


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
    assert resized_size(W, H, 48) == (48, 32)
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
