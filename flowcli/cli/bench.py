"""``flowcli bench``: seconds per pair, pairs/s and peak memory, per size, device, precision and batch."""
from __future__ import annotations

import re
from typing import Optional

import click

from flowcli.cli.common import console, info, json_out, warn

_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _sizes(ctx, param, values):
    out = []
    for v in values:
        m = _SIZE.match(v.strip().lower())
        if not m or int(m.group(1)) < 32 or int(m.group(2)) < 32:
            raise click.BadParameter(f"{v!r} is not a size WIDTHxHEIGHT of at least 32x32", ctx, param)
        out.append((int(m.group(1)), int(m.group(2))))
    return out


@click.command("bench")
@click.option("--size", "sizes", multiple=True, default=["1024x436"], callback=_sizes, show_default=True,
              help="Frame size WIDTHxHEIGHT (repeatable), e.g. 1024x436 or 3840x2160.")
@click.option("--device", "devices", multiple=True, default=["auto"], show_default=True, help="auto, cpu, cuda[:N] (repeatable).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["fp32", "fp16", "bf16"]), default=["fp32"],
              show_default=True, help="Repeatable. fp16 needs CUDA.")
@click.option("--batch", "batches", multiple=True, type=click.IntRange(min=1), default=[1], show_default=True,
              help="Pairs per forward pass (repeatable).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--compare-eager/--no-compare-eager", default=True, show_default=True,
              help="Also time the plain fp32 eager path (NCHW, correlation one displacement at a time) and report the "
                   "speed-up over it.")
@click.option("--compile", "use_compile", is_flag=True, help="Wrap the network in torch.compile (tuned variant).")
@click.option("--cuda-graphs", is_flag=True, help="Replay the forward pass as a CUDA graph (tuned variant, CUDA only).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: all usable cores).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint to time (speed does not depend on the values; default: a random network).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def command(sizes, devices, precisions, batches, repeats, warmup, compare_eager, use_compile, cuda_graphs, threads,
            weights: Optional[str], as_json: bool) -> None:
    """Measure inference speed and memory (pre/post-processing included)."""
    import torch

    from flowcli.api import resolve_device
    from flowcli.bench import bench_estimator, set_cpu_threads, variant_estimator

    n_threads = set_cpu_threads(threads)
    results = []
    for dev_name in devices:
        device = resolve_device(dev_name)
        for precision in precisions:
            if precision == "fp16" and device.type != "cuda":
                warn(f"skipping fp16 on {device}: it needs CUDA")
                continue
            variants = ["tuned"] + (["eager"] if compare_eager and precision == "fp32" else [])
            for variant in variants:
                est = variant_estimator(variant, weights=weights, device=device, precision=precision,
                                        compile=use_compile, cuda_graphs=cuda_graphs and device.type == "cuda")
                for (w, h) in sizes:
                    for b in batches:
                        try:
                            r = bench_estimator(est, width=w, height=h, batch=b, repeats=repeats, warmup=warmup,
                                                variant=variant)
                        except torch.cuda.OutOfMemoryError:
                            warn(f"{w}x{h} batch {b} {precision} on {device}: out of memory")
                            continue
                        results.append(r.to_dict())
                        mem = (f"peak RSS {r.peak_rss_mb:.0f} MiB" if r.peak_rss_mb is not None else "")
                        if r.cuda_max_allocated_mb is not None:
                            mem += f", CUDA max allocated {r.cuda_max_allocated_mb:.0f} MiB"
                        info(f"{device} {precision} {variant:5s} {w}x{h} batch {b}: {r.seconds_per_pair * 1000:.1f} ms/pair, "
                             f"{r.pairs_per_s:.2f} pairs/s, {mem}")
                del est
    speedups = []
    for r in results:
        if r["variant"] != "tuned":
            continue
        base = next((e for e in results if e["variant"] == "eager" and all(
            e[k] == r[k] for k in ("device", "precision", "width", "height", "batch"))), None)
        if base:
            s = base["seconds_per_pair"] / r["seconds_per_pair"]
            speedups.append({"device": r["device"], "width": r["width"], "height": r["height"], "batch": r["batch"],
                             "speedup_over_eager": s})
            info(f"speed-up over the plain fp32 eager path ({r['device']}, {r['width']}x{r['height']}, batch {r['batch']}): {s:.2f}x")
    if as_json:
        json_out({"threads": n_threads, "torch": torch.__version__, "results": results, "speedups": speedups})
    elif not results:
        console().print("no measurement ran", markup=False)
