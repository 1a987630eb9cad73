"""Speed and memory measurements (library side of ``flowcli bench``; benchmarks print figures, tests never time).

Peak host memory is the process's peak resident set (``VmHWM``), reset before each measurement through
``/proc/self/clear_refs`` where Linux allows it; CUDA peak is ``torch.cuda.max_memory_allocated``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .api import Estimator, adapted_size
from .model import build_liteflownet
from .recipe import Recipe


@dataclass
class BenchResult:
    device: str
    precision: str
    width: int
    height: int
    batch: int
    variant: str  # "tuned" or "eager" (the plain path), see variant_estimator
    seconds_per_pair: float
    pairs_per_s: float
    repeats: int
    peak_rss_mb: Optional[float]
    cuda_max_allocated_mb: Optional[float]

    def to_dict(self) -> dict:
        return asdict(self)


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> Optional[float]:
    """The process's peak resident set size in MiB (Linux), or None where unknown."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except Exception:  # noqa: BLE001 - not every platform has it
        return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_estimator(est: Estimator, *, width: int = 1024, height: int = 436, batch: int = 1, repeats: int = 3,
                    warmup: int = 1, variant: str = "tuned", seed: int = 0) -> BenchResult:
    """Time ``est`` on random uint8 pairs of ``width`` x ``height`` (pre/post-processing included, transfers from
    host memory included), ``warmup`` untimed and ``repeats`` timed batches; reports the median batch."""
    g = np.random.default_rng(seed)
    rgb1 = torch.from_numpy(g.integers(0, 256, (batch, height, width, 3), dtype=np.uint8))
    rgb2 = torch.from_numpy(g.integers(0, 256, (batch, height, width, 3), dtype=np.uint8))
    if est.device.type == "cuda":
        rgb1, rgb2 = rgb1.pin_memory(), rgb2.pin_memory()
    for _ in range(warmup):
        est.flow_tensor(rgb1, rgb2)
    _sync(est.device)
    can_reset = _reset_peak_rss()
    if est.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(est.device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        est.flow_tensor(rgb1, rgb2)
        _sync(est.device)
        times.append(time.perf_counter() - t0)
    dt = float(np.median(times))  # the median: robust to a slow outlier on a shared machine
    return BenchResult(device=str(est.device), precision=est.precision, width=width, height=height, batch=batch,
                       variant=variant, seconds_per_pair=dt / batch, pairs_per_s=batch / dt, repeats=repeats,
                       peak_rss_mb=peak_rss_mb() if can_reset or warmup == 0 else None,
                       cuda_max_allocated_mb=(torch.cuda.max_memory_allocated(est.device) / 2 ** 20
                                              if est.device.type == "cuda" else None))


def speedups(results: list[dict]) -> list[dict]:
    """For each "tuned" result, its speed-up over the "eager" result of the same device, precision, size and batch."""
    out = []
    keys = ("device", "precision", "width", "height", "batch")
    for r in results:
        base = next((e for e in results if e["variant"] == "eager" and all(e[k] == r[k] for k in keys)), None)
        if r["variant"] == "tuned" and base:
            out.append({**{k: r[k] for k in keys if k != "precision"},
                        "speedup_over_eager": base["seconds_per_pair"] / r["seconds_per_pair"]})
    return out


def bench_recipe(est: Estimator, *, width: int = 1024, height: int = 436, repeats: int = 3, seed: int = 0,
                 plain_seconds: Optional[float] = None) -> dict:
    """Seconds per stage of ``est``'s recipe for one pair of ``width`` x ``height`` (median of ``repeats``, in the
    estimator's precision): the pan search where the recipe aligns, each network candidate, each classical one, the
    selection and the refinement, their total and, given the plain network's time (``plain_seconds``), the total as
    a multiple of it. Smooth random textures stand in for frames (the stages' cost does not depend on the content)."""
    import cv2

    recipe = est.recipe
    g = np.random.default_rng(seed)
    base = cv2.resize(g.random((height // 8 + 2, width // 8 + 2, 3), dtype=np.float32), (width + 6, height))
    img1 = np.ascontiguousarray((base[:, :width] * 255).astype(np.uint8))
    img2 = np.ascontiguousarray((base[:, 6:] * 255).astype(np.uint8))
    t1, t2 = torch.from_numpy(img1[None]), torch.from_numpy(img2[None])

    def median(fn) -> tuple[float, object]:
        out, times = None, []
        for _ in range(repeats + 1):  # the first call is a warm-up
            t0 = time.perf_counter()
            out = fn()
            _sync(est.device)
            times.append(time.perf_counter() - t0)
        return float(np.median(times[1:])), out

    def as_array(flow: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(flow[0].permute(1, 2, 0).float().cpu().numpy())

    stages: dict = {}
    if recipe.align is not None:  # the pair moves 6 px: the pan search runs, nothing is taken out
        stages["alignment"], _ = median(lambda: recipe.prepare(img1, img2))

    def timed(name: str, fn):
        stages[name], out = median(fn)
        return out

    network = [as_array(f) for f in est.network_flows(t1, t2, run=timed)]
    from .baselines import baseline_flow

    for c in recipe.parsed:
        if not c.uses_network:
            stages[c.spec], _ = median(lambda k=c.kind: baseline_flow(k, img1, img2))
    flows = recipe.all_candidates(img1, img2, network)
    flow = flows[0]
    if len(flows) > 1:
        stages[f"{recipe.selection['method']} selection"], (flow, _) = median(lambda: recipe.select(img1, img2, flows))
    if recipe.refine is not None:
        from .postprocess import variational_refine

        stages["refinement"], _ = median(lambda: variational_refine(img1, img2, flow, **recipe.refine))
    total = sum(stages.values())
    return {"recipe": recipe.name, "recipe_text": recipe.describe(), "precision": est.precision, "width": width,
            "height": height, "device": str(est.device), "stages": stages, "total": total,
            "plain_network": plain_seconds, "times_plain": None if not plain_seconds else total / plain_seconds}


def bench_plain(est: Estimator, *, width: int = 1024, height: int = 436, repeats: int = 3) -> float:
    """Seconds of the plain network (``est`` with the plain recipe) for one ``width`` x ``height`` pair."""
    r = bench_recipe(est, width=width, height=height, repeats=repeats)
    return r["total"]


def variant_estimator(variant: str, *, weights: Optional[str] = None, device="cpu", precision: str = "fp32",
                      compile: bool = False, cuda_graphs: bool = False) -> Estimator:
    """An estimator for one benchmark variant; speed does not depend on the weights, so ``weights=None`` times a
    random network.

    ``"tuned"``: flowcli's default path (channels_last activations for oneDNN/cuDNN, the matmul correlation), plus
    ``compile``/``cuda_graphs`` if asked. ``"eager"``: the plain path the speed-ups are measured against, a
    straightforward port: NCHW activations and the correlation computed one displacement at a time."""
    if variant not in ("tuned", "eager"):
        raise ValueError(f"variant must be tuned or eager, got {variant!r}")
    tuned = variant == "tuned"
    est = Estimator(weights, model=None if weights else build_liteflownet(), device=device, precision=precision,
                    channels_last=tuned, compile=compile and tuned, cuda_graphs=cuda_graphs and tuned)
    if not tuned:
        est.model.set_correlation("reference")
    return est


def set_cpu_threads(threads: Optional[int]) -> int:
    """Use ``threads`` intra-op threads (default: every core this process may run on); returns the count."""
    import os

    if threads is None:
        threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(int(threads))
    return int(threads)


__all__ = ["BenchResult", "adapted_size", "bench_estimator", "bench_plain", "bench_recipe", "peak_rss_mb",
           "set_cpu_threads", "speedups", "variant_estimator"]
