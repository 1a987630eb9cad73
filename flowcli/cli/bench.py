"""``flowcli bench``: seconds per pair, pairs/s and peak memory per size, device, precision and batch, and the time of
each stage of an inference recipe."""
from __future__ import annotations

import re
from typing import Optional

import click

from flowcli.cli.app import pass_app

_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _sizes(ctx, param, values):
    out = []
    for v in values:
        m = _SIZE.match(v.strip().lower())
        if not m or int(m.group(1)) < 32 or int(m.group(2)) < 32:
            raise click.BadParameter(f"{v!r} is not a size WIDTHxHEIGHT of at least 32x32", ctx, param)
        out.append((int(m.group(1)), int(m.group(2))))
    return out


def _devices(ctx, param, values):
    from flowcli.devices import parse_device

    try:
        return [parse_device(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


@click.command("bench")
@click.option("--size", "sizes", multiple=True, default=["1024x436"], callback=_sizes, show_default=True,
              help="Frame size WIDTHxHEIGHT (repeatable), e.g. 1024x436 or 3840x2160.")
@click.option("--device", "devices", multiple=True, default=["auto"], callback=_devices, show_default=True,
              help="auto, cpu, cuda[:N] (repeatable).")
@click.option("--precision", "precisions", multiple=True, type=click.Choice(["fp32", "fp16", "bf16"]), default=["fp32"],
              show_default=True, help="Repeatable. fp16 needs CUDA.")
@click.option("--batch", "batches", multiple=True, type=click.IntRange(min=1), default=[1], show_default=True,
              help="Pairs per forward pass (repeatable).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--warmup", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--compare-eager/--no-compare-eager", default=True, show_default=True,
              help="Also time the plain fp32 eager path (NCHW, correlation one displacement at a time).")
@click.option("--compile", "use_compile", is_flag=True, help="Wrap the network in torch.compile (tuned variant).")
@click.option("--cuda-graphs", is_flag=True, help="Replay the forward pass as a CUDA graph (tuned variant, CUDA only).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads (default: all usable cores).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Checkpoint whose recipes to time (default: the bundled weights).")
@click.option("--stages/--no-stages", default=True, show_default=True,
              help="Also time each stage of the weights' recipes (fast, default, quality: candidates, selection, "
                   "refinement), each beside the plain network.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@pass_app
def command(app, sizes, devices, precisions, batches, repeats, warmup, compare_eager, use_compile, cuda_graphs,
            threads, weights: Optional[str], stages: bool, as_json: bool) -> None:
    """Measure inference speed and memory (pre/post-processing included). Exit 1 when nothing was measured."""
    import torch

    from flowcli.bench import set_cpu_threads, speedups
    from flowcli.devices import resolve_device

    n_threads = set_cpu_threads(threads)
    results, recipes = [], []
    for dev_name in devices:
        device = resolve_device(dev_name)
        for precision in precisions:
            if precision == "fp16" and device.type != "cuda":
                app.warn(f"skipping fp16 on {device}: it needs CUDA")
                continue
            for variant in ["tuned"] + (["eager"] if compare_eager and precision == "fp32" else []):
                results += _measure(app, variant, weights, device, precision, use_compile, cuda_graphs, sizes, batches,
                                    repeats, warmup)
        if stages:
            recipes += [r for (w, h) in sizes for r in _stages(app, weights, device, w, h, repeats)]
    found = speedups(results)
    for s in found:
        app.info(f"speed-up over the plain fp32 eager path ({s['device']}, {s['width']}x{s['height']}, batch "
                 f"{s['batch']}): {s['speedup_over_eager']:.2f}x")
    if as_json:
        app.json({"threads": n_threads, "torch": torch.__version__, "results": results, "speedups": found,
                  "recipe_stages": recipes})
    if not results:
        app.abort("no measurement ran")


def _measure(app, variant, weights, device, precision, use_compile, cuda_graphs, sizes, batches, repeats, warmup):
    import torch

    from flowcli.bench import bench_estimator, variant_estimator

    est = variant_estimator(variant, weights=weights, device=device, precision=precision, compile=use_compile,
                            cuda_graphs=cuda_graphs and device.type == "cuda")
    out = []
    for (w, h) in sizes:
        for b in batches:
            try:
                r = bench_estimator(est, width=w, height=h, batch=b, repeats=repeats, warmup=warmup, variant=variant)
            except torch.cuda.OutOfMemoryError:
                app.warn(f"{w}x{h} batch {b} {precision} on {device}: out of memory")
                continue
            out.append(r.to_dict())
            mem = f"peak RSS {r.peak_rss_mb:.0f} MiB" if r.peak_rss_mb is not None else ""
            if r.cuda_max_allocated_mb is not None:
                mem += f", CUDA max allocated {r.cuda_max_allocated_mb:.0f} MiB"
            app.info(f"{device} {precision} {variant:5s} {w}x{h} batch {b}: {r.seconds_per_pair * 1000:.1f} ms/pair, "
                     f"{r.pairs_per_s:.2f} pairs/s, {mem}")
    return out


def _stages(app, weights, device, w: int, h: int, repeats: int) -> list[dict]:
    """The stages of every named recipe of the weights (each in its own precision), beside the plain network (the
    original, fp32) timed in the same process."""
    from flowcli.api import Estimator
    from flowcli.bench import bench_plain, bench_recipe
    from flowcli.weights import load_checkpoint

    ckpt = load_checkpoint(weights)
    plain = bench_plain(Estimator(ckpt, device=device, recipe="plain"), width=w, height=h, repeats=repeats)
    app.info(f"{device} plain network (fp32) {w}x{h}: {plain * 1000:.0f} ms")
    out = []
    for name in ["fast", "default", "quality"]:
        if name != "default" and name not in ckpt.presets:
            continue
        est = Estimator(ckpt, device=device, recipe=name)
        r = bench_recipe(est, width=w, height=h, repeats=repeats, plain_seconds=plain)
        parts = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in r["stages"].items())
        app.info(f"{device} recipe {name} ({est.precision}) {w}x{h}: {parts}; total {r['total'] * 1000:.0f} ms "
                 f"= {r['times_plain']:.2f}x the plain network")
        out.append(r)
    return out
