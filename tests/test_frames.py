"""flowcli.frames: natural order, listing, pairs, output names, pairs files, shards."""
from __future__ import annotations

from pathlib import Path

import pytest

from flowcli.frames import consecutive_pairs, list_frames, natural_sorted, output_names, parse_shard, read_pairs_file, shard
from tests.support import make_frames


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
