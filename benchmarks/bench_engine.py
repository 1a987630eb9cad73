"""Seconds per 1024x436 pair on this machine's CPU, batch 1 (pre/post-processing included).

    python benchmarks/bench_engine.py [--size 1024x436] [--rounds 2] [--repeats 3] [--threads N]

The plain path is a straightforward port in a default process: NCHW activations, the correlation computed one
displacement at a time. The tuned path is what the flowcli CLI runs: channels_last activations (oneDNN), the matmul
correlation, freed memory kept in the process (flowcli.runtime). Steps in between show where the time goes, and the
tuned path under bf16 autocast is timed too (fast on CPUs with AVX512-BF16 or AMX; fp32 stays the default).
Each configuration runs in its own process (the memory setting is process-wide), the configurations take turns
for ``--rounds`` rounds so that a drift of the machine's speed hits all of them alike, and the median of all timed
passes is reported. Speed does not depend on the weights, so a random network is timed.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# name -> (variant, correlation, retain freed memory, precision)
CONFIGS = {
    "plain fp32 eager": ("eager", "reference", False, "fp32"),
    "+ matmul correlation": ("eager", "matmul", False, "fp32"),
    "+ channels_last": ("tuned", "matmul", False, "fp32"),
    "tuned fp32 (+ retained memory)": ("tuned", "matmul", True, "fp32"),
    "tuned bf16": ("tuned", "matmul", True, "bf16"),
}


def measure(name: str, w: int, h: int, repeats: int, threads) -> dict:
    """Time one configuration in this process (the child side)."""
    from flowcli.bench import bench_estimator, set_cpu_threads, variant_estimator
    from flowcli.runtime import retain_freed_memory

    variant, corr, retain, precision = CONFIGS[name]
    if retain:
        retain_freed_memory()
    n = set_cpu_threads(threads)
    est = variant_estimator(variant, device="cpu", precision=precision)
    est.model.set_correlation(corr)
    r = bench_estimator(est, width=w, height=h, repeats=repeats, warmup=1)
    times = [r.seconds_per_pair]  # the median of this process's passes
    return {"times": times, "peak_rss_mb": r.peak_rss_mb, "threads": n}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1024x436")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    if args.child:
        print(json.dumps(measure(args.child, w, h, args.repeats, args.threads)))
        return
    results: dict[str, list] = {n: [] for n in CONFIGS}
    peak: dict[str, float] = {}
    threads = None
    for _ in range(args.rounds):
        for name in CONFIGS:
            cmd = [sys.executable, __file__, "--child", name, "--size", args.size, "--repeats", str(args.repeats)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
            results[name] += out["times"]
            peak[name] = max(peak.get(name, 0.0), out["peak_rss_mb"] or 0.0)
            threads = out["threads"]
    med = {n: float(np.median(t)) for n, t in results.items()}
    base = med["plain fp32 eager"]
    print(f"cpu, {w}x{h}, batch 1, {threads} threads, median over {args.rounds} processes of each one's median of {args.repeats} passes:")
    for name in CONFIGS:
        print(f"  {name:32s} {med[name]:.3f} s/pair  {base / med[name]:.2f}x  (peak RSS {peak[name]:.0f} MiB)")


if __name__ == "__main__":
    main()
