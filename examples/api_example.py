"""Optical flow from Python: the example pair through ``flowcli.estimate_flow``.

    python examples/api_example.py                       # bundled weights
    python examples/api_example.py --weights my.pt --out /tmp/flow_example

Writes ``flow.flo`` and ``flow.png`` (color coding) into --out and prints the average endpoint error against the
pair's true flow.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # runnable from a source checkout without installing

import flowcli  # noqa: E402
from flowcli.io import read_flow, read_image, write_flow, write_image  # noqa: E402
from flowcli.viz import flow_to_color  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="checkpoint (default: the bundled weights)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="flow_example", help="output folder (default: ./flow_example)")
    args = parser.parse_args()

    img1 = read_image(HERE / "frame_0001.png")  # HxWx3 uint8 RGB
    img2 = read_image(HERE / "frame_0002.png")
    truth, valid = read_flow(HERE / "frame_0001_true.flo")

    t0 = time.perf_counter()
    try:
        flow = flowcli.estimate_flow(img1, img2, weights=args.weights, device=args.device)  # HxWx2 float32, px
    except (ValueError, FileNotFoundError) as exc:  # e.g. no bundled weights yet: say so in one line
        sys.exit(f"error: {exc}")
    seconds = time.perf_counter() - t0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_flow(out / "flow.flo", flow)
    write_image(out / "flow.png", flow_to_color(flow))

    aee = float(np.linalg.norm(flow - truth, axis=2)[valid].mean())
    print(f"{img1.shape[1]}x{img1.shape[0]} pair in {seconds:.2f} s: AEE {aee:.3f} px against the true flow")
    print(f"wrote {out / 'flow.flo'} and {out / 'flow.png'}")


if __name__ == "__main__":
    main()
