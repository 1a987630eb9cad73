"""``flowcli viz FLOW... -o OUT``: pictures of existing flow files (any supported format).

* one flow file and ``-o x.png``: one color image;
* several files (or a folder) and ``-o DIR``: ``DIR/<name>.png`` per file;
* files or a folder and ``-o x.mp4``: one color video in natural order, with one normalization for all frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from flowcli.cli.common import console, fail, info, verbose
from flowcli.cli.paths import check_output_folder
from flowcli.io.flow import FLOW_EXTENSIONS
from flowcli.io.image import IMAGE_EXTENSIONS
from flowcli.pipeline import VIDEO_EXTENSIONS, natural_sorted


def _expand(inputs: tuple[str, ...]) -> list[Path]:
    """Files as given; folders replaced by their flow files in natural order. Unknown extensions and empty
    folders are usage errors."""
    files: list[Path] = []
    for text in inputs:
        p = Path(text)
        if p.is_dir():
            found = natural_sorted([f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                                    and f.suffix.lower() in FLOW_EXTENSIONS])
            if not found:
                raise click.BadParameter(f"{p}: no flow files ({', '.join(FLOW_EXTENSIONS)}) in this folder",
                                         param_hint="'FLOW...'")
            files += found
        elif p.suffix.lower() not in FLOW_EXTENSIONS:
            raise click.BadParameter(f"{p}: unknown flow file extension {p.suffix or '(none)'!r} "
                                     f"(use {', '.join(FLOW_EXTENSIONS)})", param_hint="'FLOW...'")
        else:
            files.append(p)
    return files


def _percentile(files: list[Path], percentile: float, step: int = 4) -> float:
    """First pass for a video: the magnitude percentile over all files (every ``step``-th pixel)."""
    import numpy as np

    from flowcli.io import read_flow

    samples = []
    for f in files:
        flow, valid = read_flow(f)
        flow, valid = flow[::step, ::step], valid[::step, ::step]
        samples.append(np.hypot(flow[..., 0], flow[..., 1])[valid])
    mags = np.concatenate(samples) if samples else np.zeros(0)
    value = float(np.percentile(mags, percentile)) if mags.size else 0.0
    return value if value > 0 else 1.0


@click.command(short_help="Color pictures or a video from flow files.")
@click.argument("flows", nargs=-1, required=True, type=click.Path(exists=True), metavar="FLOW...")
@click.option("-o", "--output", required=True, type=click.Path(), metavar="OUT",
              help="A .png (one input file), a video (.mp4, ...), or a folder for one PNG per input.")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Magnitude of full saturation (default: per image; for a video, --percentile over all).")
@click.option("--percentile", type=click.FloatRange(50, 100), default=99.0, show_default=True,
              help="Video without --max-flow: saturate at this percentile of all magnitudes.")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="Frame rate of a video output.")
def command(flows: tuple[str, ...], output: str, max_flow: Optional[float], percentile: float, fps: float) -> None:
    """Color-code FLOW files (.flo, KITTI .png, .pfm, .npy, .npz) or folders of them into OUT."""
    from flowcli.io import read_flow, write_image
    from flowcli.viz import flow_to_color

    files = _expand(flows)
    out = Path(output)
    ext = out.suffix.lower()

    if ext in VIDEO_EXTENSIONS:
        from flowcli.pipeline import VideoWriter

        check_output_folder(out.parent)
        norm = max_flow if max_flow is not None else _percentile(files, percentile)
        verbose(f"normalization: {norm:.2f} px")
        with VideoWriter(out, fps) as writer:  # atomic: a bad file midway leaves no video
            for f in files:
                flow, valid = read_flow(f)
                writer.write(flow_to_color(flow, max_flow=norm, valid=valid))
        info(f"{len(files)} frames -> {out} ({fps:g} fps, saturation at {norm:.2f} px)")
        return

    if ext in IMAGE_EXTENSIONS and not out.is_dir():
        if len(files) != 1:
            raise click.UsageError(f"{len(files)} flow files but one output image {out}; give a folder or a video "
                                   f"as -o")
        check_output_folder(out.parent)
        flow, valid = read_flow(files[0])
        write_image(out, flow_to_color(flow, max_flow=max_flow, valid=valid))
        info(f"{files[0]} -> {out}")
        return

    if ext and not out.is_dir():
        raise click.BadParameter(f"{out}: unknown output extension {ext!r} (an image {', '.join(IMAGE_EXTENSIONS)}, "
                                 f"a video {', '.join(VIDEO_EXTENSIONS)}, or a folder)", param_hint="'-o'")
    check_output_folder(out, create=True)
    names = [f.stem for f in files]
    failed = 0
    for f in files:
        # same stem from two folders (a/0001.flo, b/0001.flo) would overwrite: prefix the folder name then
        name = f"{f.parent.name}_{f.stem}" if names.count(f.stem) > 1 else f.stem
        try:
            flow, valid = read_flow(f)
            write_image(out / f"{name}.png", flow_to_color(flow, max_flow=max_flow, valid=valid))
        except (ValueError, OSError) as exc:
            failed += 1
            console().print(f"failed: {' '.join(str(exc).split())}", markup=False)
    info(f"{len(files) - failed} of {len(files)} pictures written to {out}")
    if failed:
        fail(f"{failed} of {len(files)} flow files failed")
