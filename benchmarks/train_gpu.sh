#!/usr/bin/env bash
# Training on a GPU machine in one call: the recipe for SECONDS of wall time from INIT (default: the bundled weights,
# as the config says), then the weights land in OUT_DIR.
#   bash benchmarks/train_gpu.sh OUT_DIR SECONDS [INIT]
# Then evaluate OUT/averaged.pt (tools/eval_snapshots.py takes run states; `flowcli eval --weights` takes this file)
# and bundle it if it measures better; a CPU run continues from it with `--set init=...`.
#
# Why a script: the device image has torch, numpy, OpenCV, click, rich and scikit-image but no network, so the
# package cannot be pip-installed there; it runs from the working tree. One rendering worker (the CPU recipe) would
# starve a GPU, so every core but two renders batches (the batches do not depend on the worker count). The run
# state (86 MB) is over what a call brings back (16 MiB a file), so the averaged and the raw weights come back as
# fp16 checkpoints (10.8 MB each) with the metrics log. DEVICE=cpu runs the same on the CPU (a smoke test).
set -euo pipefail
out=${1:?usage: train_gpu.sh OUT_DIR SECONDS [INIT]}
secs=${2:?usage: train_gpu.sh OUT_DIR SECONDS [INIT]}
init=${3:-}
device=${DEVICE:-cuda}
config=${CONFIG:-weights/train_synthetic.toml}
run=${RUN_DIR:-runs/gpu}
cores=$(nproc)
workers=$(( cores > 3 ? cores - 2 : 1 ))
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$out"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
# checkpoints every 1000 steps: a save of the 86 MB state every 50 steps would cost more than the steps at GPU speed
set -- --set "workers=$workers" --set checkpoint_every=1000 --set keep_every=0
[ -n "$init" ] && set -- "$@" --set "init='$init'"
python3 -m flowcli.train "$config" "$run" --device "$device" --time-limit "$secs" "$@" 2> "$out/train.log" \
  || { tail -n 20 "$out/train.log"; exit 1; }
tail -n 3 "$out/train.log"
if [ -f "$run/metrics.jsonl" ]; then cp "$run/metrics.jsonl" "$out/metrics.jsonl"; else : > "$out/metrics.jsonl"; fi
python3 - "$run" "$out" "$device" <<'PY'
import json, sys
import torch
from flowcli.train import export_weights
run, out, device = sys.argv[1:4]
hw = torch.cuda.get_device_name(0) if device.startswith("cuda") and torch.cuda.is_available() else "cpu"
state = torch.load(f"{run}/last.pt", map_location="cpu", weights_only=True)
for name, average in (("averaged", True), ("raw", False)):
    export_weights(run, f"{out}/{name}.pt", name="flowcli-synthetic", average=average, meta={"hardware": hw})
records = [json.loads(line) for line in open(f"{out}/metrics.jsonl")]
print(json.dumps({"step": state["step"], "hardware": hw, "last": records[-1] if records else None}))
PY
