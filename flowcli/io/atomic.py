"""Atomic file output: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted job leaves only complete outputs
(plus, at worst, a stray ``.tmp`` file that the next run overwrites).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's extension (``out.tmp1234.png``) so that writers which pick the
    format from the extension (OpenCV, imageio) still work. On error the temporary file is removed and
    the target is left untouched.
    """
    target = Path(path)
    tmp = target.with_name(f".{target.stem}.tmp{os.getpid()}{target.suffix}")
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
