"""``flowcli viz FLOW... -o OUT``: pictures of existing flow files (any supported format).

* one flow file and ``-o x.png``: one color image;
* several files (or a folder) and ``-o DIR``: ``DIR/<name>.png`` per file (names made distinct);
* files or a folder and ``-o x.mp4``: one color video in natural order, with one normalization for all frames.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import VIDEO_EXTENSIONS, check_distinct, check_output_folder
from flowcli.io.image import IMAGE_EXTENSIONS


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
@click.option("--legend", is_flag=True,
              help="Add the color wheel, with the magnitude of full saturation in pixels, right of each picture.")
@pass_app
def command(app, flows: tuple[str, ...], output: str, max_flow: Optional[float], percentile: float, fps: float,
            legend: bool) -> None:
    """Color-code FLOW files (.flo, KITTI .png, .pfm, .npy, .npz) or folders of them into OUT."""
    from flowcli.io import read_flow, write_image
    from flowcli.jobs.pictures import (color_picture, expand_flow_inputs, magnitude_percentile, picture_names,
                                       write_pictures, write_video)

    try:
        files = expand_flow_inputs(flows)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'FLOW...'") from None
    out = Path(output)
    ext = out.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        check_distinct(files, [out])
        check_output_folder(out.parent)
        norm = max_flow if max_flow is not None else magnitude_percentile(files, percentile)
        app.verbose(f"normalization: {norm:.2f} px")
        write_video(files, out, fps, norm, legend=legend)
        app.info(f"{len(files)} frames -> {out} ({fps:g} fps, saturation at {norm:.2f} px)")
        return
    if ext in IMAGE_EXTENSIONS and not out.is_dir():
        if len(files) != 1:
            raise click.UsageError(f"{len(files)} flow files but one output image {out}; give a folder or a video "
                                   f"as -o")
        check_distinct(files, [out])
        check_output_folder(out.parent)
        flow, valid = read_flow(files[0])
        write_image(out, color_picture(flow, valid, max_flow=max_flow, legend=legend))
        app.info(f"{files[0]} -> {out}")
        return
    if ext and not out.is_dir():
        raise click.BadParameter(f"{out}: unknown output extension {ext!r} (an image {', '.join(IMAGE_EXTENSIONS)}, "
                                 f"a video {', '.join(VIDEO_EXTENSIONS)}, or a folder)", param_hint="'-o'")
    names = picture_names(files)
    check_distinct(files, [out / name for name in names])
    check_output_folder(out, create=True)
    renamed = [f"{f.name} -> {name}" for f, name in zip(files, names) if name != f"{f.stem}.png"]
    if renamed:  # the names the user would expect clash: say which picture is which
        more = f" and {len(renamed) - 6} more" if len(renamed) > 6 else ""
        app.info(f"pictures named apart (the flow files share names): {', '.join(renamed[:6])}{more}")
    written = write_pictures(files, out, max_flow=max_flow, legend=legend, on_failure=lambda f, msg: app.failed(msg))
    app.info(f"{written} of {len(files)} pictures written to {out}")
    if written < len(files):
        app.abort(f"{len(files) - written} of {len(files)} flow files failed")
