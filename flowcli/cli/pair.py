"""``flowcli pair IMG1 IMG2 -o OUT``: flow for one pair, plus optional pictures of it."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.common import fail, flow_options, info, json_out, make_estimator
from flowcli.cli.paths import check_output_folder, flow_path_option, image_path_option, input_file
from flowcli.io import read_image, write_flow, write_image


def flow_stats(flow) -> dict:
    """Mean and max magnitude (px) of the finite vectors of an HxWx2 flow."""
    import numpy as np

    mag = np.hypot(flow[..., 0], flow[..., 1])
    mag = mag[np.isfinite(mag)]
    return {"mean": float(mag.mean()) if mag.size else float("nan"),
            "max": float(mag.max()) if mag.size else float("nan")}


@click.command(short_help="Flow between two images.")
@click.argument("img1", type=input_file())
@click.argument("img2", type=input_file())
@click.option("-o", "--output", type=flow_path_option(), default=None, metavar="OUT",
              help="Flow file; the format follows the extension: .flo, .png (KITTI 16-bit), .pfm, .npy, .npz.")
@click.option("--viz", type=image_path_option(), default=None, metavar="PNG", help="Color-coded flow image.")
@click.option("--warp", type=image_path_option(), default=None, metavar="PNG",
              help="Frame 2 warped back onto frame 1 by the flow.")
@click.option("--panel", type=image_path_option(), default=None, metavar="PNG",
              help="Frame 1 | flow colors | warped frame 2 | photometric error, side by side.")
@click.option("--occlusion", type=image_path_option(), default=None, metavar="PNG",
              help="Occlusion mask (white = occluded) by forward-backward check; computes the backward flow too.")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Flow magnitude of full color saturation (default: this pair's largest).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
def command(img1: str, img2: str, output: Optional[str], viz: Optional[str], warp: Optional[str],
            panel: Optional[str], occlusion: Optional[str], max_flow: Optional[float], as_json: bool,
            weights: Optional[str], device: str, fp16: bool, bf16: bool, scale: float) -> None:
    """Compute the optical flow from IMG1 to IMG2.

    Prints one line (size, mean and max magnitude, seconds) on stderr, or the same as JSON on stdout with
    --json. Example: flowcli pair examples/frame_0001.png examples/frame_0002.png -o flow.flo --viz flow.png
    """
    outputs = {k: v for k, v in (("flow", output), ("viz", viz), ("warp", warp), ("panel", panel),
                                 ("occlusion", occlusion)) if v}
    # Fail before the (slow) inference when an output cannot be written; every write below is atomic.
    for path in outputs.values():
        check_output_folder(Path(path).parent)
    a, b = read_image(img1), read_image(img2)
    if a.shape != b.shape:
        fail(f"{img1} is {a.shape[1]}x{a.shape[0]} but {img2} is {b.shape[1]}x{b.shape[0]}; "
             f"the two images must have the same size")
    from flowcli.api import MIN_SIZE

    if min(a.shape[:2]) < MIN_SIZE:
        fail(f"{img1} is {a.shape[1]}x{a.shape[0]}: the network needs images of at least {MIN_SIZE}x{MIN_SIZE}")
    est = make_estimator(weights, device, fp16, bf16, scale)
    t0 = time.perf_counter()
    if occlusion:
        flow, back = est.estimate_batch([(a, b), (b, a)], batch_size=2)
    else:
        flow, back = est.estimate(a, b), None
    seconds = time.perf_counter() - t0

    import numpy as np

    if not np.isfinite(flow).all():
        fail(f"the network returned non-finite flow for {img1} -> {img2} (broken weights?)")
    warped = None
    if output:
        write_flow(output, flow)
    if viz:
        from flowcli.viz import flow_to_color

        write_image(viz, flow_to_color(flow, max_flow=max_flow))
    if warp or panel:
        from flowcli.viz import warp_image

        warped, _ = warp_image(b, flow)
        if warp:
            write_image(warp, warped)
    if panel:
        from flowcli.viz import make_panel, photometric_error

        write_image(panel, make_panel(a, flow, warped, photometric_error(a, warped), max_flow=max_flow))
    occluded = None
    if occlusion:
        from flowcli.viz import occlusion_mask

        mask = occlusion_mask(flow, back)
        occluded = float(mask.mean())
        write_image(occlusion, (mask * 255).astype(np.uint8))

    stats = flow_stats(flow)
    h, w = flow.shape[:2]
    summary = {"image1": img1, "image2": img2, "width": w, "height": h, "mean_px": round(stats["mean"], 4),
               "max_px": round(stats["max"], 4), "seconds": round(seconds, 4), "device": str(est.device),
               "outputs": outputs}
    if occluded is not None:
        summary["occluded_fraction"] = round(occluded, 4)
    if as_json:
        json_out(summary)
    else:
        extra = f", {occluded:.1%} occluded" if occluded is not None else ""
        dest = f" -> {', '.join(outputs.values())}" if outputs else ""
        info(f"{w}x{h}: mean {stats['mean']:.2f} px, max {stats['max']:.2f} px{extra}, "
             f"{seconds:.2f} s on {est.device}{dest}")
