"""Frames and pairs for batch jobs: natural sort (``frame2`` before ``frame10``), listing a folder, consecutive pairs,
pairs files, the output name of a pair, and sharding (``index % n == i``). No torch, click or rich."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Optional, Sequence

from flowcli.io.image import IMAGE_EXTENSIONS

__all__ = ["UNREAD_IMAGE_EXTENSIONS", "consecutive_pairs", "list_frames", "natural_key", "natural_sorted",
           "output_names", "parse_shard", "read_pairs_file", "shard", "skipped_images"]

#: Picture formats that :func:`list_frames` does not take as frames (OpenCV does not read them, or not reliably):
#: what phones and cameras write besides JPEG (HEIC/HEIF, AVIF, raw DNG and the like), animations, HDR formats.
UNREAD_IMAGE_EXTENSIONS: tuple[str, ...] = (".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".cr3", ".nef", ".arw",
                                            ".orf", ".rw2", ".raf", ".gif", ".jp2", ".exr", ".hdr", ".tga", ".psd")

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

    Hidden files (``.name``, e.g. the temporary files of an interrupted write) are ignored. A broken symbolic link
    with an image's name is listed: it is a frame the sequence expects, and reading it fails loudly, where dropping
    it would silently pair its neighbours.
    """
    d = Path(folder)
    if not d.is_dir():
        raise NotADirectoryError(f"{d}: not a folder")
    exts = {e.lower() for e in extensions}
    files = [p for p in d.iterdir() if (p.is_file() or (p.is_symlink() and not p.exists()))
             and p.suffix.lower() in exts and not p.name.startswith(".")]
    return natural_sorted(files)


def skipped_images(folder: str | os.PathLike) -> list[Path]:
    """The pictures directly in ``folder`` that :func:`list_frames` leaves out for their format
    (:data:`UNREAD_IMAGE_EXTENSIONS`, e.g. a phone's ``IMG_0002.HEIC`` among JPEGs), in natural order: the pairs
    around them skip a frame, which the user should hear of."""
    d = Path(folder)
    try:
        entries = list(d.iterdir())
    except OSError:
        return []
    exts = set(UNREAD_IMAGE_EXTENSIONS)
    return natural_sorted([p for p in entries if p.suffix.lower() in exts and not p.name.startswith(".")])


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
