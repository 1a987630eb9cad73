"""Path parameters shared by the commands: extensions checked at parse time (a usage error, exit 2), output
folders checked before any work starts (a runtime error, exit 1)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Sequence

import click

from flowcli.cli.common import fail
from flowcli.io.flow import FLOW_EXTENSIONS
from flowcli.io.image import IMAGE_EXTENSIONS
from flowcli.pipeline import VIDEO_EXTENSIONS


def input_file() -> click.Path:
    """An existing file (missing -> usage error naming it)."""
    return click.Path(exists=True, dir_okay=False)


class ExtPath(click.ParamType):
    """A path whose extension must be one of ``extensions`` (case-insensitive)."""

    name = "path"

    def __init__(self, extensions: Sequence[str], what: str) -> None:
        self.extensions = tuple(extensions)
        self.what = what

    def convert(self, value, param, ctx):
        text = os.fspath(value)
        ext = Path(text).suffix.lower()
        if ext not in self.extensions:
            self.fail(f"{text}: unknown {self.what} extension {ext or '(none)'!r} "
                      f"(use {', '.join(self.extensions)})", param, ctx)
        return text


def flow_path_option() -> ExtPath:
    return ExtPath(FLOW_EXTENSIONS, "flow file")


def image_path_option() -> ExtPath:
    return ExtPath(IMAGE_EXTENSIONS, "image")


def video_path_option() -> ExtPath:
    return ExtPath(VIDEO_EXTENSIONS, "video")


def check_output_folder(folder: str | os.PathLike, *, create: bool = False) -> Path:
    """Make sure files can be written into ``folder`` (creating it with ``create``), or stop with one line.

    Writability is tested by creating and removing a hidden file, because permission bits say nothing when the
    tool runs as root or on odd file systems.
    """
    d = Path(folder) if str(folder) else Path(".")
    if create:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"cannot create output folder {d}: {exc.strerror or exc}")
    if not d.exists():
        fail(f"output folder {d} does not exist")
    if not d.is_dir():
        fail(f"output folder {d} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".flowcli-probe-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        fail(f"cannot write into output folder {d}: {exc.strerror or exc}")
    return d
