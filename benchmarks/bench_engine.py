"""Seconds per 1024x436 pair on this machine's CPU, fp32, batch 1 (pre/post-processing included).

    python benchmarks/bench_engine.py [--size 1024x436] [--repeats 3] [--threads N]

Prints the plain eager NCHW path and the tuned path (channels_last) side by side, and the speed-up. Speed does
not depend on the weights, so a random network is timed. The same figures come from `flowcli bench`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flowcli.api import Estimator  # noqa: E402
from flowcli.bench import bench_estimator, set_cpu_threads  # noqa: E402
from flowcli.model import build_liteflownet  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1024x436")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    threads = set_cpu_threads(args.threads)
    model = build_liteflownet()
    res = {}
    for variant, tuned in (("eager", False), ("tuned", True)):
        est = Estimator(model=model, device="cpu", channels_last=tuned)
        r = bench_estimator(est, width=w, height=h, repeats=args.repeats, variant=variant)
        res[variant] = r
        print(f"cpu fp32 {variant:5s} {w}x{h} batch 1: {r.seconds_per_pair:.3f} s/pair "
              f"(peak RSS {r.peak_rss_mb:.0f} MiB, {threads} threads)")
    print(f"speed-up of the tuned path over plain fp32 eager: {res['eager'].seconds_per_pair / res['tuned'].seconds_per_pair:.2f}x")


if __name__ == "__main__":
    main()
