#!/usr/bin/env bash
# The CUDA checks and figures on a machine with a GPU: the CUDA tests, then `flowcli bench` (JSON into OUT_DIR).
#   bash benchmarks/bench_gpu.sh [OUT_DIR]
set -euo pipefail
out=${1:-.}
python -m pytest -q tests/model tests/test_api.py 2>&1 | tail -3
flowcli bench --device cuda --size 1024x436 --precision fp32 --precision fp16 --precision bf16 \
  --batch 1 --batch 32 --repeats 20 --warmup 3 --json > "$out/bench_cuda_1024.json"
flowcli bench --device cuda --size 1024x436 --precision fp16 --batch 1 --cuda-graphs --no-compare-eager \
  --repeats 50 --warmup 3 --json > "$out/bench_cuda_1024_graphs.json"
flowcli bench --device cuda --size 3840x2160 --precision fp16 --batch 1 --repeats 3 --json > "$out/bench_cuda_4k.json"
python - "$out" <<'PY'
import json, sys
for name in ("bench_cuda_1024.json", "bench_cuda_1024_graphs.json", "bench_cuda_4k.json"):
    for r in json.load(open(f"{sys.argv[1]}/{name}"))["results"]:
        print(f"{r['device']} {r['precision']} {r['variant']} {r['width']}x{r['height']} batch {r['batch']}: "
              f"{r['seconds_per_pair'] * 1000:.2f} ms/pair, {r['pairs_per_s']:.1f} pairs/s, "
              f"CUDA max {r['cuda_max_allocated_mb']:.0f} MiB")
PY
