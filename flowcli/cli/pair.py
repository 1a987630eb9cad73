"""``flowcli pair IMG1 IMG2 -o OUT``: flow for one pair, plus optional pictures of it."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import (check_distinct, check_output_folder, flow_options, flow_path_option,
                                 image_path_option, input_file, make_estimator)


@click.command(short_help="Flow between two images.")
@click.argument("img1", type=input_file())
@click.argument("img2", type=input_file())
@click.option("-o", "--output", type=flow_path_option(), default=None, metavar="OUT",
              help="Flow file; the format follows the extension: .flo, .png (KITTI 16-bit), .pfm, .npy, .npz.")
@click.option("--viz", type=image_path_option(), default=None, metavar="PNG", help="Color-coded flow image.")
@click.option("--warp", type=image_path_option(), default=None, metavar="PNG",
              help="Frame 2 warped back onto frame 1 by the flow.")
@click.option("--panel", type=image_path_option(), default=None, metavar="PNG",
              help="Frame 1 | flow colors | warped frame 2 | photometric error, side by side, each tile titled.")
@click.option("--occlusion", type=image_path_option(), default=None, metavar="PNG",
              help="Occlusion mask (white = occluded) by forward-backward check; computes the backward flow too.")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Flow magnitude of full color saturation (default: this pair's largest).")
@click.option("--legend", is_flag=True,
              help="Add the color wheel, with the magnitude of full saturation in pixels, beside --viz and --panel.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
@pass_app
def command(app, img1: str, img2: str, output: Optional[str], viz: Optional[str], warp: Optional[str],
            panel: Optional[str], occlusion: Optional[str], max_flow: Optional[float], legend: bool, as_json: bool,
            flow) -> None:
    """Compute the optical flow from IMG1 to IMG2.

    Prints one line (size, mean and max magnitude, seconds) on stderr, or the same as JSON on stdout with
    --json. Example: flowcli pair examples/frame_0001.png examples/frame_0002.png -o flow.flo --viz flow.png
    """
    from flowcli.io import read_image, write_flow, write_image
    from flowcli.jobs.pair import MIN_SIZE, flow_stats, pictures

    outputs = {k: v for k, v in (("flow", output), ("viz", viz), ("warp", warp), ("panel", panel),
                                 ("occlusion", occlusion)) if v}
    if legend and not (viz or panel):
        raise click.UsageError("--legend needs --viz or --panel (the pictures it explains)")
    check_distinct([img1, img2], list(outputs.values()))  # no output may replace an input or another output
    for path in outputs.values():  # fail before the (slow) inference when an output cannot be written
        check_output_folder(Path(path).parent)
    a, b = read_image(img1), read_image(img2)
    if a.shape != b.shape:
        app.abort(f"{img1} is {a.shape[1]}x{a.shape[0]} but {img2} is {b.shape[1]}x{b.shape[0]}; "
                  f"the two images must have the same size")
    if min(a.shape[:2]) < MIN_SIZE:
        app.abort(f"{img1} is {a.shape[1]}x{a.shape[0]}: the network needs images of at least {MIN_SIZE}x{MIN_SIZE}")
    est = make_estimator(app, flow)
    t0 = time.perf_counter()
    fwd, back = est.estimate_batch([(a, b), (b, a)], batch_size=2) if occlusion else (est.estimate(a, b), None)
    seconds = time.perf_counter() - t0
    import numpy as np

    if not np.isfinite(fwd).all():
        app.abort(f"the network returned non-finite flow for {img1} -> {img2} (broken weights?)")
    if output:
        write_flow(output, fwd)
    made = pictures(a, b, fwd, back, max_flow=max_flow, wanted={k for k in outputs if k != "flow"})
    _explain(made, max_flow, fwd, legend)
    for key, image in made.items():
        if key in outputs:
            write_image(outputs[key], image)
    stats = flow_stats(fwd)
    h, w = fwd.shape[:2]
    summary = {"image1": img1, "image2": img2, "width": w, "height": h, "mean_px": round(stats["mean"], 4),
               "max_px": round(stats["max"], 4), "seconds": round(seconds, 4), "device": str(est.device),
               "recipe": est.recipe.name, "outputs": outputs}
    if "occluded_fraction" in made:
        summary["occluded_fraction"] = round(made["occluded_fraction"], 4)
    if as_json:
        app.json(summary)
    else:
        extra = f", {made['occluded_fraction']:.1%} occluded" if "occluded_fraction" in made else ""
        dest = f" -> {', '.join(outputs.values())}" if outputs else ""
        app.info(f"{w}x{h}: mean {stats['mean']:.2f} px, max {stats['max']:.2f} px{extra}, "
                 f"{seconds:.2f} s on {est.device}{dest}")


def _explain(made: dict, max_flow: Optional[float], fwd, legend: bool) -> None:
    """Titles on the panel's tiles and, with ``legend``, the color wheel beside the color pictures (in place)."""
    from flowcli.viz.color import add_legend, flow_scale, px_text
    from flowcli.viz.panels import label_tiles

    scale = max_flow if max_flow is not None else flow_scale(fwd)  # the magnitude the colors saturate at
    if "panel" in made:
        made["panel"] = label_tiles(made["panel"], ("frame 1", f"flow, max {px_text(scale)}", "frame 2 warped to 1",
                                                    "photometric error"))
    if legend:
        for key in ("viz", "panel"):
            if key in made:
                made[key] = add_legend(made[key], scale)
