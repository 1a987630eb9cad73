"""Pipeline overhead of ``flowcli video``: its wall time against pure inference on the same frames.

    python benchmarks/bench_video.py [CLIP] [--weights PATH] [--device auto] [--batch-size 4] [--repeat 3]

* pure inference: the clip's frames decoded into memory beforehand, then only ``Estimator.flow_tensor`` on
  consecutive pairs in batches (and the copy of the result to host memory);
* pipeline: ``flowcli video CLIP --viz OUT.mp4 ...`` in this process (weights already loaded, as for the pure
  run), which adds decoding, coloring, encoding and file writing, overlapped with inference by threads.

Overhead = (pipeline - inference) / inference. Each case is run ``--repeat`` times and the fastest run counts
(the least disturbed by other load on the machine). Without bundled weights and without --weights, a randomly
initialised network is used: the timing does not depend on the weights' values.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.api import get_estimator  # noqa: E402
from flowcli.cli import main as cli_main  # noqa: E402
from flowcli.videoio import open_video  # noqa: E402
from flowcli.weights import CheckpointError, bundled_path  # noqa: E402


def _weights(arg: str | None, tmp: Path) -> tuple[str, str]:
    if arg:
        return arg, arg
    try:
        return str(bundled_path()), "bundled"
    except CheckpointError:
        import torch

        from flowcli.model import build_liteflownet
        from flowcli.weights import save_checkpoint

        torch.manual_seed(0)
        path = tmp / "random.pt"
        save_checkpoint(path, build_liteflownet().state_dict(), {"name": "bench-random"})
        return str(path), "random (no bundled weights yet)"


def pure_inference(est, frames: list[np.ndarray], batch_size: int) -> float:
    """Seconds for flow_tensor over all consecutive pairs, frames already in memory."""
    import torch

    pairs = list(zip(frames[:-1], frames[1:]))
    t0 = time.perf_counter()
    for i in range(0, len(pairs), batch_size):
        chunk = pairs[i:i + batch_size]
        flow = est.flow_tensor(torch.from_numpy(np.stack([a for a, _ in chunk])),
                               torch.from_numpy(np.stack([b for _, b in chunk])))
        flow.cpu().numpy()
    if est.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def pipeline(args: list[str]) -> float:
    """Seconds for one in-process ``flowcli video`` run."""
    t0 = time.perf_counter()
    rc = cli_main.main(["-q", "video", *args], prog_name="flowcli", standalone_mode=False)
    if rc not in (None, 0):
        raise SystemExit(f"flowcli video failed with exit status {rc}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clip", nargs="?", default=str(ROOT / "examples" / "clip.mp4"))
    ap.add_argument("--weights", default=None, help="checkpoint (default: bundled, else random weights)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    a = ap.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        weights, label = _weights(a.weights, tmp)
        est = get_estimator(weights, device=a.device)
        stream = open_video(a.clip)
        frames = [f for _, f in stream.frames]
        info = stream.info
        n_pairs = len(frames) - 1
        print(f"clip {a.clip}: {len(frames)} frames {info.width}x{info.height} @ {info.fps:g} fps; "
              f"weights {label}; device {est.device}, {torch.get_num_threads()} torch threads; "
              f"batch {a.batch_size}")

        common = [a.clip, "--weights", weights, "--device", a.device, "--batch-size", str(a.batch_size)]
        cases = {
            "--viz --max-flow 10 (one pass)": common + ["--viz", str(tmp / "a.mp4"), "--max-flow", "10"],
            "--viz --side-by-side --flo-dir (one pass)": common + ["--viz", str(tmp / "b.mp4"), "--side-by-side",
                                                                   "--max-flow", "10", "--flo-dir", str(tmp / "f")],
            "--viz, percentile first pass (default)": common + ["--viz", str(tmp / "c.mp4")],
        }
        pure_inference(est, frames[:2], a.batch_size)  # warm-up (allocator, kernels)
        pipeline(cases["--viz --max-flow 10 (one pass)"])  # warm-up (ffmpeg, imports)
        # interleaved rounds, so that a change in background load hits every case alike
        times: dict[str, list[float]] = {"pure": [], **{name: [] for name in cases}}
        for _ in range(a.repeat):
            times["pure"].append(pure_inference(est, frames, a.batch_size))
            for name, args in cases.items():
                times[name].append(pipeline(args))
        infer = min(times["pure"])
        print(f"pure inference: {infer:.2f} s for {n_pairs} pairs ({n_pairs / infer:.2f} pairs/s)")
        for name in cases:
            t = min(times[name])
            print(f"flowcli video {name}: {t:.2f} s ({n_pairs / t:.2f} pairs/s), "
                  f"overhead {100.0 * (t - infer) / infer:+.1f}%")


if __name__ == "__main__":
    main()
