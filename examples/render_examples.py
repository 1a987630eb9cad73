"""Render the example files deterministically (synthetic scenes with known motion).

    python examples/render_examples.py        # from the repository root; rewrites the files below

* ``frame_0001.png``, ``frame_0002.png``, ``frame_0001_true.flo``: one pair from the project's synthetic
  generator (:func:`flowcli.data.synthetic.render_pair`), 320x240, with its exact flow.
* ``clip.mp4``: 12 frames, 320x240, 10 fps, H.264. A camera pans, turns and zooms over a textured scene by the
  same small similarity transform every frame, while a textured disc crosses it at constant velocity.
* ``clip_flow/000000.png`` ... ``000010.png``: the true flow between consecutive clip frames, as KITTI 16-bit
  PNG (1/64 px steps; read with ``flowcli.io.read_flow``). PNG rather than .flo because it is ~6x smaller.

Why the clip's flow is exact: frame t shows the texture through the map ``M_t = S^t M_0`` (texture -> frame),
so a background pixel p of frame t moves to ``M_{t+1} M_t^-1 p = S p``: flow ``S p - p``, the same for every
pair. The disc is pasted over it with a soft edge; where its alpha in frame t exceeds 0.5 the flow is its
velocity. (Pixels the disc uncovers in frame t+1 keep the background's motion, as in FlyingChairs.)
"""
from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # runnable from anywhere in a source checkout

from flowcli.data.synthetic import render_pair  # noqa: E402
from flowcli.io import write_flow, write_image  # noqa: E402
from flowcli.io.atomic import atomic_path  # noqa: E402

SIZE = (240, 320)  # (H, W); multiples of 16 so that H.264 needs no padding
CLIP_FRAMES = 12
CLIP_FPS = 10
DISC_RADIUS = 38.0
DISC_VELOCITY = (-4.5, 2.0)  # px per frame
CAMERA = dict(angle_deg=0.6, zoom=1.012, shift=(2.5, -1.25))  # per frame, about the image center


def similarity(cx: float, cy: float, angle_deg: float, zoom: float, shift: tuple[float, float]) -> np.ndarray:
    """3x3 map: rotate by ``angle_deg`` and scale by ``zoom`` about (cx, cy), then translate by ``shift``."""
    a = math.radians(angle_deg)
    c, s = zoom * math.cos(a), zoom * math.sin(a)
    m = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    m[0, 2] = cx - c * cx + s * cy + shift[0]
    m[1, 2] = cy - s * cx - c * cy + shift[1]
    return m


def render_pair_example() -> None:
    sample = render_pair(np.random.default_rng(20180618), SIZE, min_layers=3, max_layers=5, max_motion=10.0)
    write_image(HERE / "frame_0001.png", sample["img1"])
    write_image(HERE / "frame_0002.png", sample["img2"])
    write_flow(HERE / "frame_0001_true.flo", sample["flow"])


def render_clip() -> None:
    import imageio.v2 as imageio

    h, w = SIZE
    rng = np.random.default_rng(7)
    # Textures from the generator: a large background image, and another scene's frame for the disc.
    big = render_pair(rng, (2 * h, 2 * w), min_layers=6, max_layers=8, max_motion=0.0)["img1"]
    disc_tex = render_pair(rng, (96, 96), min_layers=2, max_layers=3, max_motion=0.0)["img1"]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    step = similarity(cx, cy, **CAMERA)
    # M_0: the big texture's center on the frame's center, at 1:1 scale.
    m0 = np.array([[1.0, 0.0, cx - (big.shape[1] - 1) / 2.0], [0.0, 1.0, cy - (big.shape[0] - 1) / 2.0],
                   [0.0, 0.0, 1.0]])
    # The disc: soft alpha (1 px ramp) so that compositing at sub-pixel positions has no jaggies.
    d = disc_tex.shape[0]
    yy, xx = np.mgrid[0:d, 0:d].astype(np.float32)
    alpha = np.clip(DISC_RADIUS - np.hypot(xx - (d - 1) / 2.0, yy - (d - 1) / 2.0) + 0.5, 0.0, 1.0)
    disc_prem = np.dstack([disc_tex.astype(np.float32) / 255.0 * alpha[..., None], alpha])
    start = np.array([0.72 * w, 0.3 * h])  # disc center in frame 0

    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    bg_flow = np.dstack([step[0, 0] * xs + step[0, 1] * ys + step[0, 2] - xs,
                         step[1, 0] * xs + step[1, 1] * ys + step[1, 2] - ys]).astype(np.float32)

    flow_dir = HERE / "clip_flow"
    flow_dir.mkdir(exist_ok=True)
    for old in flow_dir.glob("*.png"):
        old.unlink()
    m = m0
    with atomic_path(HERE / "clip.mp4") as tmp:
        writer = imageio.get_writer(str(tmp), fps=CLIP_FPS, codec="libx264", quality=8, macro_block_size=16,
                                    ffmpeg_log_level="error")
        try:
            for t in range(CLIP_FRAMES):
                bg = cv2.warpAffine(big.astype(np.float32) / 255.0, m[:2], (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REFLECT)
                center = start + t * np.array(DISC_VELOCITY)
                shift = np.array([[1.0, 0.0, center[0] - (d - 1) / 2.0], [0.0, 1.0, center[1] - (d - 1) / 2.0]])
                fg = cv2.warpAffine(disc_prem, shift, (w, h), flags=cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                frame = bg * (1.0 - fg[..., 3:4]) + fg[..., :3]
                writer.append_data(np.clip(np.round(frame * 255.0), 0, 255).astype(np.uint8))
                if t + 1 < CLIP_FRAMES:
                    flow = bg_flow.copy()
                    flow[fg[..., 3] > 0.5] = DISC_VELOCITY
                    write_flow(flow_dir / f"{t:06d}.png", flow)
                m = step @ m
        finally:
            writer.close()


def main() -> None:
    render_pair_example()
    render_clip()
    total = sum(p.stat().st_size for p in HERE.rglob("*") if p.is_file() and p.suffix != ".py")
    print(f"wrote the examples in {HERE} ({total / 1e6:.2f} MB of data)")


if __name__ == "__main__":
    main()
