"""``flowcli dir FRAMES -o OUTDIR``: flow for every consecutive pair of a folder (or the pairs of a file).

Batched, resumable (every output is written atomically, so an interrupted run leaves only complete files and
``--resume`` skips them), shardable (``--shard i/n``), and tolerant: a frame that cannot be read fails only the
pairs that need it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.common import (console, fail, flow_options, info, json_out, make_estimator, progress,
                                rate_text)
from flowcli.cli.paths import check_output_folder, input_file
from flowcli.pipeline import (Worker, consecutive_pairs, list_frames, output_names, parse_shard, prefetch,
                              read_pairs_file, shard)

FORMATS = ("flo", "png", "pfm", "npy", "npz")
MAX_FAILURE_LINES = 20  # beyond that, a broken run would bury the summary


@dataclass
class Item:
    """One pair to compute: its position in the job, input paths, output paths."""

    index: int
    frame1: Path
    frame2: Path
    out: Path
    viz: Optional[Path]


def _shard_option(ctx, param, value):
    if value is None:
        return None
    try:
        return parse_shard(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx, param) from None


def _complete(item: Item) -> bool:
    """Whether a previous run finished this pair: the output (and its picture) exist and read back."""
    from flowcli.io import read_flow

    if not item.out.is_file() or item.out.stat().st_size == 0:
        return False
    if item.viz is not None and (not item.viz.is_file() or item.viz.stat().st_size == 0):
        return False
    try:
        read_flow(item.out)
    except (ValueError, OSError):
        return False
    return True


class Failures:
    """Failed pairs, reported one line each as they happen (thread-safe: the writer thread adds too)."""

    def __init__(self) -> None:
        self.items: dict[int, str] = {}
        self._lock = threading.Lock()

    def add(self, item: Item, message: str) -> None:
        with self._lock:
            if item.index in self.items:
                return
            self.items[item.index] = message
            n = len(self.items)
        if n <= MAX_FAILURE_LINES:
            console().print(f"failed: {item.frame1.name} -> {item.frame2.name}: {message}", markup=False)
        elif n == MAX_FAILURE_LINES + 1:
            console().print("failed: ... (further failures are only counted)", markup=False)


def _load(items: list[Item], failures: Failures):
    """Yield (item, img1, img2) for readable pairs, and (item, None, None) after reporting one that failed.
    Frames shared by consecutive pairs are decoded once (a two-entry cache)."""
    from flowcli.io import read_image

    cache: dict[Path, object] = {}
    for item in items:
        imgs = []
        for path in (item.frame1, item.frame2):
            if path not in cache:
                try:
                    cache[path] = read_image(path)
                except (ValueError, OSError) as exc:
                    cache[path] = exc
            imgs.append(cache[path])
        for old in [p for p in cache if p not in (item.frame1, item.frame2)]:
            del cache[old]
        bad = next((x for x in imgs if isinstance(x, BaseException)), None)
        if bad is not None:
            failures.add(item, _one_line(bad))
            yield item, None, None  # counted as handled by the progress bar
            continue
        a, b = imgs
        if a.shape != b.shape:
            failures.add(item, f"{item.frame1} is {a.shape[1]}x{a.shape[0]} but {item.frame2} is "
                               f"{b.shape[1]}x{b.shape[0]}")
            yield item, None, None
            continue
        yield item, a, b


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    return text or type(exc).__name__


def _write(item: Item, flow, max_flow: Optional[float], failures: Failures, done: list) -> None:
    """Write one pair's outputs (each atomically); a failure fails this pair only."""
    from flowcli.io import write_flow, write_image

    try:
        item.out.parent.mkdir(parents=True, exist_ok=True)
        if item.viz is not None:
            from flowcli.viz import flow_to_color

            item.viz.parent.mkdir(parents=True, exist_ok=True)
            write_image(item.viz, flow_to_color(flow, max_flow=max_flow))
        # the flow file last: its presence is what --resume trusts
        write_flow(item.out, flow)
        done.append(item.index)
    except (ValueError, OSError) as exc:
        failures.add(item, _one_line(exc))


@click.command("dir", short_help="Flow for every consecutive pair in a folder.")
@click.argument("frames", type=click.Path(exists=True, file_okay=False), required=False)
@click.option("-o", "--output", "outdir", required=True, type=click.Path(dir_okay=True), metavar="OUTDIR",
              help="Folder for the flow files (created if needed).")
@click.option("--pairs", "pairs_file", type=input_file(), default=None, metavar="FILE",
              help="Pairs to compute, one 'IMG1 IMG2' per line (relative to FRAMES if given, else to FILE's "
                   "folder) instead of FRAMES' consecutive frames.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="flo", show_default=True,
              help="Flow file format (png = KITTI 16-bit).")
@click.option("--viz-dir", type=click.Path(), default=None, metavar="DIR", help="Also write color PNGs here.")
@click.option("--max-flow", type=click.FloatRange(min=0, min_open=True), default=None, metavar="PX",
              help="Magnitude of full saturation in --viz-dir pictures (default: per pair).")
@click.option("--resume", is_flag=True, help="Skip pairs whose output exists and reads back.")
@click.option("--shard", callback=_shard_option, default=None, metavar="I/N",
              help="Do only pairs with index % N == I (0-based), e.g. one shard per process or GPU.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True,
              help="Pairs per network call.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@flow_options
def command(frames: Optional[str], outdir: str, pairs_file: Optional[str], fmt: str, viz_dir: Optional[str],
            max_flow: Optional[float], resume: bool, shard: Optional[tuple[int, int]], batch_size: int,
            as_json: bool, weights: Optional[str], device: str, fp16: bool, bf16: bool, scale: float) -> None:
    """Compute flow between consecutive frames of FRAMES (natural order: frame2 before frame10).

    The output for the pair (frame_0001.png, frame_0002.png) is OUTDIR/frame_0001.flo. A frame that cannot be
    read is reported and the pairs that need it are skipped; the exit status is 1 if any pair failed.
    """
    t0 = time.perf_counter()
    items = _plan(frames, pairs_file, outdir, fmt, viz_dir, shard)
    total = len(items)
    check_output_folder(outdir, create=True)
    if viz_dir:
        check_output_folder(viz_dir, create=True)

    skipped = 0
    if resume:
        todo = [it for it in items if not _complete(it)]
        skipped = total - len(todo)
        if skipped:
            info(f"resume: {skipped} of {total} pairs already done")
    else:
        todo = items

    failures = Failures()
    done: list[int] = []
    est = make_estimator(weights, device, fp16, bf16, scale) if todo else None
    if todo:
        _run(est, todo, batch_size, max_flow, failures, done)

    seconds = time.perf_counter() - t0
    summary = {"pairs": total, "written": len(done), "skipped": skipped, "failed": len(failures.items),
               "output": outdir, "seconds": round(seconds, 3),
               "failures": [{"frame1": str(it.frame1), "frame2": str(it.frame2), "error": failures.items[it.index]}
                            for it in todo if it.index in failures.items]}
    if shard:
        summary["shard"] = f"{shard[0]}/{shard[1]}"
    if as_json:
        json_out(summary)
    info(f"{len(done)} of {total} pairs written to {outdir} ({skipped} already done) in {seconds:.1f} s"
         f" ({rate_text(len(done), seconds)})")
    if failures.items:
        fail(f"{len(failures.items)} of {total} pairs failed")


def _plan(frames, pairs_file, outdir, fmt, viz_dir, shard_spec) -> list[Item]:
    """The job's pairs with their output paths, after sharding."""
    if pairs_file:
        try:
            pairs = read_pairs_file(pairs_file, base=frames)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--pairs'") from None
        base = Path(frames) if frames else Path(pairs_file).parent
    else:
        if not frames:
            raise click.UsageError("give a FRAMES folder or --pairs FILE")
        found = list_frames(frames)
        if len(found) < 2:
            raise click.BadParameter(f"{frames} holds {len(found)} image(s); at least 2 frames are needed",
                                     param_hint="'FRAMES'")
        pairs = consecutive_pairs(found)
        base = Path(frames)
    names = output_names(pairs, "." + fmt, base=base)
    viz_names = output_names(pairs, ".png", base=base) if viz_dir else [None] * len(pairs)
    items = [Item(k, a, b, Path(outdir) / n, Path(viz_dir) / v if viz_dir else None)
             for k, ((a, b), n, v) in enumerate(zip(pairs, names, viz_names))]
    if shard_spec:
        items = shard(items, *shard_spec)
    return items


def _run(est, todo: list[Item], batch_size: int, max_flow: Optional[float], failures: Failures,
         done: list) -> None:
    """Read (background thread) -> infer in same-size batches (this thread) -> write (background thread)."""
    import numpy as np
    import torch

    loader = prefetch(_load(todo, failures), maxsize=2 * batch_size, name="read-frames")
    writer = Worker(maxsize=2 * batch_size, name="write-flow")
    computed = 0
    with progress() as bar:
        task = bar.add_task("pairs", total=len(todo))

        def advance(n: int) -> None:
            # pairs handed to the writer count as done: the bar shows inference progress
            nonlocal computed
            computed += n
            bar.update(task, completed=computed)

        def flush(batch) -> None:
            if not batch:
                return
            try:
                flows = est.flow_tensor(torch.from_numpy(np.stack([a for _, a, _ in batch])),
                                        torch.from_numpy(np.stack([b for _, _, b in batch])))
                flows = flows.permute(0, 2, 3, 1).float().cpu().numpy()
            except (RuntimeError, ValueError) as exc:  # e.g. out of memory: these pairs fail, the job goes on
                for item, _, _ in batch:
                    failures.add(item, _one_line(exc))
                advance(len(batch))
                return
            for (item, _, _), flow in zip(batch, flows):
                if not np.isfinite(flow).all():
                    failures.add(item, "the network returned non-finite flow")
                    continue
                writer.submit(_write, item, np.ascontiguousarray(flow), max_flow, failures, done)
            advance(len(batch))

        batch: list = []
        try:
            for entry in loader:
                if entry[1] is None:  # reported by the loader
                    advance(1)
                    continue
                if batch and entry[1].shape != batch[0][1].shape:
                    flush(batch)  # a batch holds one image size
                    batch = []
                batch.append(entry)
                if len(batch) >= batch_size:
                    flush(batch)
                    batch = []
            flush(batch)
        except BaseException as exc:
            # interrupted or broken: finish the writes already queued (they are complete results), then stop
            loader.close()
            try:
                writer.close()
            except BaseException:  # noqa: BLE001 - the original error is the one to report
                pass
            if isinstance(exc, KeyboardInterrupt):
                fail(f"interrupted after {len(done)} of {len(todo)} pairs; the outputs written are complete, "
                     f"rerun with --resume to finish", exit_code=130)
            raise
        loader.close()
        writer.close()
