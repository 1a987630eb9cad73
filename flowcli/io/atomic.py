"""Atomic file output: write to a temporary file beside the target, then rename.

A reader never sees a half-written file, and an interrupted job leaves only complete outputs. The temporary file is
hidden and named after the target and the writing process, ``.out.tmp1234.png`` for ``out.png``; an error, Ctrl-C or
SIGTERM removes it. Only a process killed outright (SIGKILL, power loss) can leave one behind: every reader of the
tool skips hidden files (frame listings, flow-folder listings, ``--resume``), and :func:`remove_stale_temp_files`
(called on output folders before a command writes into them, and by ``atomic_path(..., clean_stale=True)`` for its
own target) deletes those untouched for :data:`STALE_AFTER` seconds, so that files being written right now by another
process are never touched.
"""
from __future__ import annotations

import contextlib
import os
import re
import time
from pathlib import Path
from typing import Iterator, Optional

__all__ = ["STALE_AFTER", "atomic_path", "is_temp_name", "remove_stale_temp_files", "temp_path"]

#: Seconds after its last change that a temporary file of this tool counts as left behind by a killed process.
STALE_AFTER = 24 * 3600

_TEMP_NAME = re.compile(r"^\.(?P<stem>.*)\.tmp(?P<pid>\d+)(?P<suffix>\.[^.]*)?$")


def temp_path(path: str | os.PathLike) -> Path:
    """The temporary file :func:`atomic_path` writes for ``path`` in this process."""
    target = Path(path)
    return target.with_name(f".{target.stem}.tmp{os.getpid()}{target.suffix}")


def is_temp_name(name: str, target: Optional[str | os.PathLike] = None) -> bool:
    """Whether ``name`` is a temporary file name of :func:`atomic_path` (of any process), for ``target``'s name when
    given."""
    m = _TEMP_NAME.match(name)
    if m is None:
        return False
    if target is None:
        return True
    t = Path(target)
    return m.group("stem") == t.stem and (m.group("suffix") or "") == t.suffix


def remove_stale_temp_files(folder: str | os.PathLike, *, target: Optional[str | os.PathLike] = None,
                            older_than: float = STALE_AFTER) -> list[Path]:
    """Delete the temporary files of :func:`atomic_path` in ``folder`` (only ``target``'s, when given) that nobody
    changed for ``older_than`` seconds: what killed processes left behind. Returns them; errors are ignored (a file
    another process removed meanwhile, a read-only folder)."""
    removed = []
    limit = time.time() - older_than
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or not is_temp_name(entry.name, target):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, clean_stale: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's extension (``.out.tmp1234.png``) so that writers which pick the format
    from the extension (OpenCV, imageio) still work. On error (and on KeyboardInterrupt) the temporary file is
    removed and the target is left untouched. ``clean_stale``: first delete this target's temporary files that
    killed processes left (see :func:`remove_stale_temp_files`); worth it for large, rare outputs like videos.

    An ``OSError`` of the write that names no file, or the temporary one (a full disk: ``ENOSPC``, a quota), is raised
    again naming ``path``, so that the user learns which output did not fit.
    """
    target = Path(path)
    if clean_stale:
        remove_stale_temp_files(target.parent, target=target)
    tmp = temp_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        # A full disk fails the write() of the temporary file, whose OSError names no file at all (or the hidden
        # temporary name, which the user never asked for): say which output could not be written.
        if exc.filename is None or str(exc.filename) == str(tmp):
            raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None
        raise
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
