"""The pictures job behind ``flowcli viz``: color images or one color video from existing flow files."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from flowcli.frames import natural_sorted
from flowcli.io.flow import FLOW_EXTENSIONS

__all__ = ["color_picture", "expand_flow_inputs", "magnitude_percentile", "picture_names", "write_pictures",
           "write_video"]


def expand_flow_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given; folders replaced by their flow files in natural order. ValueError for an unknown extension
    or a folder without flow files."""
    files: list[Path] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = natural_sorted([f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                                    and f.suffix.lower() in FLOW_EXTENSIONS])
            if not found:
                raise ValueError(f"{p}: no flow files ({', '.join(FLOW_EXTENSIONS)}) in this folder")
            files += found
        elif p.suffix.lower() not in FLOW_EXTENSIONS:
            raise ValueError(f"{p}: unknown flow file extension {p.suffix or '(none)'!r} "
                             f"(use {', '.join(FLOW_EXTENSIONS)})")
        else:
            files.append(p)
    return files


def picture_names(files: Sequence[Path]) -> list[str]:
    """One distinct PNG name per flow file: its stem, with the format (``a_npy.png``) where two files of one folder
    share a stem, and the folder's name in front (``b_0001.png``) where files of two folders do. ValueError if names
    still clash (the same file given twice)."""
    names = []
    for f in files:
        same = [g for g in files if g.stem == f.stem]
        name = f.stem
        if len({g.parent for g in same}) > 1:
            name = f"{f.parent.name}_{name}"
        if len([g for g in same if g.parent == f.parent]) > 1:
            name = f"{name}_{f.suffix.lstrip('.').lower()}"
        names.append(name + ".png")
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise ValueError(f"flow files give the same picture name {clashes[0]!r} (the same file given twice?)")
    return names


def magnitude_percentile(files: Sequence[Path], percentile: float, step: int = 4) -> float:
    """A video's normalization: the magnitude percentile over all files (every ``step``-th pixel); 1 when all zero."""
    from flowcli.io import read_flow

    samples = []
    for f in files:
        flow, valid = read_flow(f)
        flow, valid = flow[::step, ::step], valid[::step, ::step]
        samples.append(np.hypot(flow[..., 0], flow[..., 1])[valid])
    mags = np.concatenate(samples) if samples else np.zeros(0)
    value = float(np.percentile(mags, percentile)) if mags.size else 0.0
    return value if value > 0 else 1.0


def color_picture(flow: np.ndarray, valid: Optional[np.ndarray] = None, *, max_flow: Optional[float] = None,
                  legend: bool = False) -> np.ndarray:
    """The color picture of one flow field (HxWx3 uint8), saturating at ``max_flow`` (default: its largest known
    magnitude); with ``legend`` the color wheel and that magnitude in pixels on its right."""
    from flowcli.viz import flow_to_color
    from flowcli.viz.color import add_legend, flow_scale

    scale = max_flow if max_flow is not None else flow_scale(flow, valid)
    color = flow_to_color(flow, max_flow=scale, valid=valid)
    return add_legend(color, scale) if legend else color


def write_video(files: Sequence[Path], out: Path, fps: float, max_flow: float, *, legend: bool = False) -> None:
    """One color video of ``files`` in order, saturating at ``max_flow`` (with ``legend``, the color wheel beside each
    frame); atomic: a bad file midway leaves none."""
    from flowcli.io import read_flow
    from flowcli.videoio import VideoWriter

    with VideoWriter(out, fps) as writer:
        for f in files:
            flow, valid = read_flow(f)
            writer.write(color_picture(flow, valid, max_flow=max_flow, legend=legend))


def write_pictures(files: Sequence[Path], folder: Path, *, max_flow: Optional[float] = None, legend: bool = False,
                   on_failure: Optional[Callable[[Path, str], None]] = None) -> int:
    """One color PNG per flow file into ``folder`` (names by :func:`picture_names`; ``legend``: each with its color
    wheel and saturation magnitude); a file that cannot be read fails alone (``on_failure(path, message)``). Returns
    how many were written."""
    from flowcli.io import read_flow, write_image

    written = 0
    for f, name in zip(files, picture_names(files)):
        try:
            flow, valid = read_flow(f)
            write_image(folder / name, color_picture(flow, valid, max_flow=max_flow, legend=legend))
            written += 1
        except (ValueError, OSError) as exc:
            if on_failure is not None:  # a failed write as "<picture>: No space left on device", as the CLI words it
                text = f"{exc.filename}: {exc.strerror}" if isinstance(exc, OSError) and exc.filename and \
                    exc.strerror else str(exc)
                on_failure(f, " ".join(text.split()))
    return written
