"""A built-in, download-free, FlyingChairs-like training set rendered procedurally.

:class:`SyntheticFlow` renders image pairs made of a textured background and several textured
foreground layers (ellipses, star polygons, smooth blobs, sometimes with holes), each moved by its
own random affine motion.  Everything is numpy + OpenCV and deterministic for ``(seed, index)``.

How a pair is made (and why the ground truth is exact):

* Every layer ``k`` is a premultiplied RGBA patch ``P_k`` placed at an integer origin in frame 1 and
  an affine map ``A_k`` (frame-1 pixel -> frame-2 pixel).  Frame 1 composites the patches as they
  are; frame 2 composites ``P_k`` backward-mapped through ``A_k`` (``cv2.warpAffine``, bilinear), in
  the same order.  So frame 2 at ``A_k(p)`` shows what frame 1 shows at ``p`` wherever layer ``k``
  is the top-most layer at both places.
* The flow at a frame-1 pixel ``p`` is ``A_k(p) - p`` for the top-most layer ``k`` covering ``p``
  in frame 1 (alpha > 0.5): occluded pixels keep the motion of their own surface, as in
  FlyingChairs and Sintel.
* ``occ`` (True = occluded) marks the pixels whose surface is not visible in frame 2: the top-most
  layer at ``round(p + flow)`` in frame 2 is another layer, or ``p + flow`` leaves the frame.

Samples are dicts in the project's sample format (see :mod:`flowcli.data`): ``img1``/``img2``
HxWx3 uint8 RGB, ``flow`` HxWx2 float32, ``valid`` HxW bool (all True: the flow is known
everywhere), ``occ`` HxW bool, ``name`` like ``"synthetic/0/0000042"`` and ``sequence`` ``""``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["SyntheticFlow", "render_pair"]

# FlyingChairs has 22,872 pairs; an unbounded synthetic set still needs a length for samplers.
DEFAULT_LENGTH = 22872
# Displacements are sized like FlyingChairs at this width and scale with the image width.
_REFERENCE_WIDTH = 448
_REFERENCE_MOTION = 30.0
# Share of pixels per band of true motion (flowcli.metrics.MAGNITUDE_BINS: 0-1, 1-3, 3-10, 10-30, 30-100, 100+ px) that
# the large-motion training data aims at: the shares of 38 real pairs with ground truth (Sintel, FlyingChairs,
# Middlebury, KITTI), a FlyingChairs-like heavy tail with the small motions that real footage is full of.
LARGE_MOTION_TARGET = (0.09, 0.23, 0.23, 0.26, 0.15, 0.04)


class SyntheticFlow:
    """Procedural FlyingChairs-like pairs with exact flow and occlusion ground truth.

    Takes ``size=(H, W)`` (default ``(320, 448)``) and keyword-only ``seed`` (int >= 0),
    ``length`` (None means :data:`DEFAULT_LENGTH`), ``min_layers``/``max_layers`` (how many
    foreground layers, inclusive; default 3..8) and ``max_motion`` (pixels; the typical largest
    translation of a layer, a few go up to ~2.5x that; None means 30 px scaled by ``W / 448``),
    ``deformation``, ``photos``/``photo_share`` and ``large_share``/``large_range`` (see :func:`render_pair`).
    ``ds[i]`` returns a sample dict (see the module docstring) that depends only on
    ``(seed, i)``; indices outside ``[0, len)`` raise IndexError.
    """

    name = "synthetic"
    metric_kind = "sintel"
    has_gt = True

    def __init__(
        self,
        size: Sequence[int] = (320, 448),
        *,
        seed: int = 0,
        length: Optional[int] = None,
        min_layers: int = 3,
        max_layers: int = 8,
        max_motion: Optional[float] = None,
        deformation: float = 1.0,
        photos: Optional[Sequence[np.ndarray]] = None,
        photo_share: float = 0.5,
        large_share: float = 0.0,
        large_range: Sequence[float] = (30.0, 150.0),
    ) -> None:
        if len(size) != 2 or int(size[0]) < 16 or int(size[1]) < 16:
            raise ValueError(f"synthetic: size must be (H, W) with both >= 16, got {tuple(size)!r}")
        if int(seed) < 0:
            raise ValueError(f"synthetic: seed must be >= 0, got {seed}")
        if not 0 <= int(min_layers) <= int(max_layers):
            raise ValueError(f"synthetic: need 0 <= min_layers <= max_layers, got {min_layers}, {max_layers}")
        if length is not None and int(length) < 0:
            raise ValueError(f"synthetic: length must be >= 0 or None, got {length}")
        if max_motion is not None and float(max_motion) < 0:
            raise ValueError(f"synthetic: max_motion must be >= 0 or None, got {max_motion}")
        self.size: Tuple[int, int] = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.length = DEFAULT_LENGTH if length is None else int(length)
        self.min_layers = int(min_layers)
        self.max_layers = int(max_layers)
        self.deformation = float(deformation)
        if not 0.0 <= float(photo_share) <= 1.0:
            raise ValueError(f"synthetic: photo_share must be in [0, 1], got {photo_share}")
        self.photos = list(photos) if photos else None
        self.photo_share = float(photo_share)
        self.large_share, self.large_range = _check_large(large_share, large_range)
        self.max_motion = (
            _REFERENCE_MOTION * self.size[1] / _REFERENCE_WIDTH if max_motion is None else float(max_motion)
        )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"synthetic: index {index} out of range for length {self.length}")
        rng = np.random.default_rng([self.seed, index])
        sample = render_pair(
            rng,
            self.size,
            min_layers=self.min_layers,
            max_layers=self.max_layers,
            max_motion=self.max_motion,
            deformation=self.deformation,
            photos=self.photos,
            photo_share=self.photo_share,
            large_share=self.large_share,
            large_range=self.large_range,
        )
        sample["name"] = f"synthetic/{self.seed}/{index:07d}"
        sample["sequence"] = ""
        return sample

    def __repr__(self) -> str:
        return (
            f"SyntheticFlow(size={self.size}, seed={self.seed}, length={self.length}, "
            f"layers={self.min_layers}..{self.max_layers}, max_motion={self.max_motion:.1f})"
        )


# --------------------------------------------------------------------------------------------
# Textures.  All return float32 HxWx3 in [0, 1].


def _fractal(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int,
             persistence: float = 0.5, channels: int = 1) -> np.ndarray:
    """Multi-octave value noise, min-max normalised to [0, 1]; HxW (channels=1) or HxWxC."""
    out = None
    amp = 1.0
    c = float(cell)
    for _ in range(octaves):
        gh = max(2, int(h / c) + 2)
        gw = max(2, int(w / c) + 2)
        shape = (gh, gw) if channels == 1 else (gh, gw, channels)
        grid = rng.random(shape, dtype=np.float32)
        # Cubic for coarse cells (smooth), linear for fine ones (cheaper, and keeps them crisp).
        layer = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC if c >= 6 else cv2.INTER_LINEAR)
        out = layer * np.float32(amp) if out is None else cv2.scaleAdd(layer, amp, out)
        amp *= persistence
        c /= 2.0
        if c < 1.5:
            break
    return cv2.normalize(out, None, 0.0, 1.0, cv2.NORM_MINMAX)


def _palette_lut(rng: np.random.Generator) -> np.ndarray:
    """A random 2-5 colour ramp as a 1x256x3 uint8 lookup table."""
    k = int(rng.integers(2, 6))
    pos = np.sort(rng.random(k))
    pos[0], pos[-1] = 0.0, 1.0
    cols = rng.random((k, 3))
    if rng.random() < 0.3:  # sometimes a near-grey ramp: not every surface is colourful
        cols = 0.7 * cols.mean(axis=1, keepdims=True) + 0.3 * cols
    xs = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(xs, pos, cols[:, ch]) for ch in range(3)], axis=-1)
    return np.round(lut * 255).astype(np.uint8).reshape(1, 256, 3)


def _colorize(s: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map a scalar field in [0, 1] through a palette LUT; float32 HxWx3 in [0, 1]."""
    u = cv2.convertScaleAbs(s, alpha=255.0)
    return cv2.LUT(cv2.merge([u, u, u]), lut).astype(np.float32) * np.float32(1.0 / 255.0)


def _coords(rng: np.random.Generator, h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    """Rotated pixel coordinates (u along a random direction, v across it), HxW float32 each."""
    theta = rng.uniform(0, math.pi)
    c, s = np.float32(math.cos(theta)), np.float32(math.sin(theta))
    x = np.arange(w, dtype=np.float32)[None, :]
    y = np.arange(h, dtype=np.float32)[:, None]
    return x * c + y * s, y * c - x * s


# Texture kinds: rgb noise, palette noise, gradient, stripes, checkers, cells.  Periodic patterns
# are rare on the background, where they would make most of the frame's flow ambiguous.
_KIND_P_OBJECT = [0.25, 0.2, 0.12, 0.1, 0.13, 0.2]
_KIND_P_BACKGROUND = [0.33, 0.3, 0.1, 0.03, 0.03, 0.21]


def _texture(rng: np.random.Generator, h: int, w: int, background: bool = False) -> np.ndarray:
    """A random procedural texture: noise, gradient, stripes, checkers or cells, plus detail."""
    scale = max(h, w)
    kind = rng.choice(6, p=_KIND_P_BACKGROUND if background else _KIND_P_OBJECT)
    if kind == 0:  # colourful multi-octave value noise, channels independent
        tex = _fractal(rng, h, w, scale * rng.uniform(0.05, 0.3), 6, rng.uniform(0.45, 0.75), channels=3)
    elif kind == 1:  # scalar multi-octave noise through a palette
        s = _fractal(rng, h, w, scale * rng.uniform(0.05, 0.4), 6, rng.uniform(0.4, 0.7))
        tex = _colorize(s, _palette_lut(rng))
    elif kind == 2:  # a linear gradient, perturbed by noise
        u, _ = _coords(rng, h, w)
        s = cv2.normalize(u, None, 0.0, 1.0, cv2.NORM_MINMAX)
        s = cv2.addWeighted(s, 0.75, _fractal(rng, h, w, scale * 0.15, 4), 0.25, 0.0)
        tex = _colorize(s, _palette_lut(rng))
    elif kind == 3:  # stripes with a noise-warped phase, soft or hard
        u, _ = _coords(rng, h, w)
        period = rng.uniform(4.0, 40.0)
        warp = _fractal(rng, h, w, scale * 0.2, 3) * np.float32(rng.uniform(0, 3 * period))
        s = np.sin((u + warp) * np.float32(2 * math.pi / period))
        if rng.random() < 0.5:
            s = np.tanh(s * np.float32(4.0))
        tex = _colorize(cv2.normalize(s, None, 0.0, 1.0, cv2.NORM_MINMAX), _palette_lut(rng))
    elif kind == 4:  # rotated checkers
        u, v = _coords(rng, h, w)
        p = np.float32(rng.uniform(4.0, 32.0))
        s = ((np.floor(u / p) + np.floor(v / (p * np.float32(rng.uniform(0.5, 2.0))))) % 2).astype(np.float32)
        s = cv2.addWeighted(s, 0.8, _fractal(rng, h, w, scale * 0.2, 3), 0.2, 0.0)
        tex = _colorize(s, _palette_lut(rng))
    else:  # Voronoi-like cells, one random colour per cell
        n = int(rng.integers(8, 120))
        seeds = np.full((h, w), 255, np.uint8)
        seeds[rng.integers(0, h, n), rng.integers(0, w, n)] = 0
        _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_CCOMP)
        table = rng.random((int(labels.max()) + 1, 3)).astype(np.float32)
        tex = table[labels]
    # Fine detail everywhere so that every surface can be tracked (cells of 2-4 px: sharp, but
    # not per-pixel white noise, which bilinear resampling would wash out).
    amp = rng.uniform(0.04, 0.25)
    detail = _fractal(rng, h, w, rng.uniform(2.0, 4.0), 2, 0.5, channels=3 if rng.random() < 0.5 else 1)
    if detail.ndim == 2:
        detail = cv2.merge([detail, detail, detail])
    tex = cv2.scaleAdd(detail - np.float32(0.5), amp, tex)
    r = rng.random()
    if r < 0.2:  # out of focus
        tex = cv2.GaussianBlur(tex, (0, 0), rng.uniform(0.8, 1.6))
    else:
        if r < 0.45:  # over-sharpened, like many photographs
            k = rng.uniform(0.3, 1.0)
            tex = cv2.addWeighted(tex, 1 + k, cv2.GaussianBlur(tex, (0, 0), rng.uniform(1.0, 2.0)), -k, 0.0)
        # A camera-like point-spread: band-limits the texture so that bilinear resampling (frame 2)
        # stays faithful to it and both frames have similar sharpness.
        tex = cv2.GaussianBlur(tex, (0, 0), rng.uniform(0.5, 0.8))
    return np.clip(tex, 0.0, 1.0, out=tex)


def _photo_texture(rng: np.random.Generator, h: int, w: int, photos: Sequence[np.ndarray]) -> np.ndarray:
    """An hxw texture cut from a random photograph: random centre, rotation and scale (mirrored at the photo's
    border), random per-channel gain, gamma and brightness, so that gray photographs get a tint."""
    photo = photos[int(rng.integers(len(photos)))]
    zoom = math.exp(rng.uniform(math.log(0.35), math.log(1.6)))  # photo pixels per texture pixel
    angle = rng.uniform(-math.pi, math.pi) if rng.random() < 0.5 else rng.normal(0, 0.15)
    if zoom > 1.0:  # minify by area averaging first, so that the warp below does not alias
        photo = cv2.resize(photo, None, fx=1.0 / zoom, fy=1.0 / zoom, interpolation=cv2.INTER_AREA)
        zoom = 1.0
    ph, pw = photo.shape[:2]
    c, s = math.cos(angle) * zoom, math.sin(angle) * zoom
    px, py = rng.uniform(0, pw - 1), rng.uniform(0, ph - 1)
    # texture pixel (x, y) -> photo pixel, centred on (px, py)
    m = np.array([[c, -s, px - c * (w - 1) / 2 + s * (h - 1) / 2],
                  [s, c, py - s * (w - 1) / 2 - c * (h - 1) / 2]], dtype=np.float64)
    tex = cv2.warpAffine(photo, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REFLECT_101)
    tex = tex.astype(np.float32) * np.float32(1.0 / 255.0)
    gain = rng.uniform(0.6, 1.3, 3).astype(np.float32)
    tex = np.power(tex * gain, np.float32(math.exp(rng.normal(0, 0.25))))
    tex += np.float32(rng.normal(0, 0.08))
    return np.clip(tex, 0.0, 1.0, out=tex)


# --------------------------------------------------------------------------------------------
# Shapes.  Alpha masks in a DxD patch, zero on the patch border.


def _star_polygon(rng: np.random.Generator, cx: float, cy: float, radius: float) -> np.ndarray:
    n = int(rng.integers(3, 13))
    ang = np.sort(rng.uniform(0, 2 * math.pi, n))
    rad = radius * rng.uniform(0.35, 1.0, n)
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], axis=1)
    return np.round(pts * 16).astype(np.int32)  # 4 fractional bits (shift=4)


def _shape_mask(rng: np.random.Generator, d: int) -> np.ndarray:
    """A random filled shape (ellipse, star polygon or blob), antialiased; float32 DxD in [0, 1]."""
    m = np.zeros((d, d), np.uint8)
    c = (d - 1) / 2.0
    rmax = d / 2.0 - 2.0
    kind = rng.choice(3, p=[0.3, 0.4, 0.3])
    if kind == 0:
        a, b = rmax * rng.uniform(0.5, 1.0), rmax * rng.uniform(0.25, 1.0)
        cv2.ellipse(m, (int(c * 16), int(c * 16)), (int(a * 16), int(b * 16)), float(rng.uniform(0, 180)),
                    0, 360, 255, -1, cv2.LINE_AA, 4)
    elif kind == 1:
        cv2.fillPoly(m, [_star_polygon(rng, c, c, rmax)], 255, cv2.LINE_AA, 4)
        if rng.random() < 0.4:  # a second, overlapping polygon: less convex, more chair-like
            off = rng.uniform(-0.3, 0.3, 2) * rmax
            cv2.fillPoly(m, [_star_polygon(rng, c + off[0], c + off[1], rmax * 0.6)], 255, cv2.LINE_AA, 4)
    else:
        s = _fractal(rng, d, d, d * 0.35, 2, 0.5)
        yy, xx = np.ogrid[:d, :d]
        r2 = ((xx - c) ** 2 + (yy - c) ** 2).astype(np.float32) / np.float32(rmax * rmax)
        field = s - r2  # a noisy dome: thresholding it gives one irregular blob inside the circle
        m = np.where(field > np.float32(rng.uniform(-0.3, 0.1)), np.uint8(255), np.uint8(0))
        m[r2 >= 1.0] = 0
        m = cv2.GaussianBlur(m, (3, 3), 0.7)
    if rng.random() < 0.25:  # holes let the layers below show through the object
        for _ in range(int(rng.integers(1, 3))):
            hc = c + rng.uniform(-0.4, 0.4, 2) * rmax
            hr = rmax * rng.uniform(0.08, 0.25, 2)
            cv2.ellipse(m, (int(hc[0] * 16), int(hc[1] * 16)), (int(hr[0] * 16), int(hr[1] * 16)),
                        float(rng.uniform(0, 180)), 0, 360, 0, -1, cv2.LINE_AA, 4)
    alpha = m.astype(np.float32) * np.float32(1.0 / 255.0)
    if (alpha > 0.5).sum() < 0.02 * d * d:  # a degenerate blob: fall back to a disc
        alpha[:] = 0
        cv2.circle(alpha, (int(c * 16), int(c * 16)), int(rmax * 0.8 * 16), 1.0, -1, cv2.LINE_AA, 4)
    return alpha


# --------------------------------------------------------------------------------------------
# Motions: 3x3 homogeneous affine matrices, frame-1 pixel -> frame-2 pixel.


def _similarity(cx: float, cy: float, angle: float, zoom: float, squeeze: float,
                tx: float, ty: float) -> np.ndarray:
    """Rotate/zoom/squeeze about (cx, cy), then translate by (tx, ty); 3x3 float64."""
    ca, sa = math.cos(angle), math.sin(angle)
    lin = np.array([[ca, -sa], [sa, ca]]) @ np.diag([zoom * squeeze, zoom / squeeze])
    m = np.eye(3)
    m[:2, :2] = lin
    m[:2, 2] = np.array([cx, cy]) - lin @ np.array([cx, cy]) + np.array([tx, ty])
    return m


def _check_large(share: float, bounds: Sequence[float]) -> Tuple[float, Tuple[float, float]]:
    lo, hi = (float(x) for x in bounds)
    if not 0.0 <= float(share) <= 1.0:
        raise ValueError(f"synthetic: large_share must be in [0, 1], got {share}")
    if not 0.0 < lo <= hi:
        raise ValueError(f"synthetic: large_range must be (lo, hi) with 0 < lo <= hi, got {tuple(bounds)!r}")
    return float(share), (lo, hi)


def _translation(rng: np.random.Generator, scale: float) -> Tuple[float, float]:
    """A random translation: mostly up to ``scale`` pixels, 12 % of them 1-2.5x larger."""
    if rng.random() < 0.12:
        mag = scale * rng.uniform(1.0, 2.5)
    else:
        mag = scale * rng.random() ** 1.3
    ang = rng.uniform(0, 2 * math.pi)
    return mag * math.cos(ang), mag * math.sin(ang)


# --------------------------------------------------------------------------------------------


def _corners_bbox(m: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> Tuple[float, float, float, float]:
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64)
    q = pts @ m[:2].T
    return q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()


def render_pair(
    rng: np.random.Generator,
    size: Sequence[int] = (320, 448),
    *,
    min_layers: int = 3,
    max_layers: int = 8,
    max_motion: float = 30.0,
    deformation: float = 1.0,
    photos: Optional[Sequence[np.ndarray]] = None,
    photo_share: float = 0.5,
    large_share: float = 0.0,
    large_range: Sequence[float] = (30.0, 150.0),
) -> dict:
    """Render one synthetic pair with ``rng``; returns ``img1, img2, flow, valid, occ`` (no name).

    ``size`` is (H, W); ``deformation`` scales the spread of every rotation, zoom and squeeze (1 = the defaults
    below; with ``max_motion`` scaled by the same factor the whole motion field shrinks while the scene, drawn
    from the same random numbers, stays the same). With ``photos`` (HxWx3 uint8 RGB arrays, see
    :mod:`flowcli.data.photos`), each texture is cut from a photograph with probability ``photo_share``; without
    them no extra random numbers are drawn, so the procedural scenes stay as they were. ``large_share`` is the
    probability that a layer (the background included) moves by a large translation instead, its length log-uniform
    in ``large_range`` pixels and its direction uniform: the heavy tail of FlyingChairs' motions (beyond 100 px at
    512x384), which the default motions never reach. Those draws come from a child stream of ``rng``; at 0 none is
    made, so the default scenes stay as they were. See :class:`SyntheticFlow` for the other parameters.
    """
    h, w = int(size[0]), int(size[1])
    large_share, (large_lo, large_hi) = _check_large(large_share, large_range)
    tail = rng.spawn(1)[0] if large_share > 0 else None  # a child stream: spawning leaves rng where it was

    def translation(scale: float) -> Tuple[float, float]:
        t = _translation(rng, scale)  # drawn in any case: the scene's random numbers stay in step
        if tail is not None and tail.random() < large_share:
            mag = math.exp(tail.uniform(math.log(large_lo), math.log(large_hi)))
            ang = tail.uniform(0, 2 * math.pi)
            return mag * math.cos(ang), mag * math.sin(ang)
        return t

    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0

    def texture(th: int, tw: int, background: bool = False) -> np.ndarray:
        if photos and rng.random() < photo_share:
            return _photo_texture(rng, th, tw, photos)
        return _texture(rng, th, tw, background=background)

    # Background: its own gentle affine motion (camera-like).
    tx, ty = translation(0.5 * max_motion)
    k = float(deformation)
    a_bg = _similarity(cx, cy, k * rng.normal(0, 0.03), math.exp(k * rng.normal(0, 0.04)),
                       math.exp(k * rng.normal(0, 0.01)), tx, ty)
    # The background patch must cover every frame-2 pixel's pre-image: frame ∪ A_bg^{-1}(frame).
    bx0, by0, bx1, by1 = _corners_bbox(np.linalg.inv(a_bg), 0, 0, w - 1, h - 1)
    ox = int(math.floor(min(0.0, bx0))) - 2
    oy = int(math.floor(min(0.0, by0))) - 2
    pw = int(math.ceil(max(w - 1.0, bx1))) + 3 - ox
    ph = int(math.ceil(max(h - 1.0, by1))) + 3 - oy
    bg = texture(ph, pw, background=True)
    # The background is opaque: a 3-channel patch, copied rather than composited.
    layers = [(bg, ox, oy, a_bg)]

    n_fg = int(rng.integers(min_layers, max_layers + 1))
    base = min(h, w)
    for _ in range(n_fg):
        d = int(round(base * math.exp(rng.uniform(math.log(0.2), math.log(0.75)))))
        d = max(d, 12)
        alpha = _shape_mask(rng, d)
        tex = texture(d, d)
        prem = cv2.merge([tex[..., 0] * alpha, tex[..., 1] * alpha, tex[..., 2] * alpha, alpha])
        # Centre anywhere in the frame (objects may be cut by the border, as in FlyingChairs).
        ocx, ocy = rng.uniform(0, w - 1), rng.uniform(0, h - 1)
        ox, oy = int(round(ocx - d / 2.0)), int(round(ocy - d / 2.0))
        tx, ty = translation(max_motion)
        # Object motion = its own rotation/zoom about its centre, after the background's motion.
        c2 = a_bg @ np.array([ocx, ocy, 1.0])
        rel = _similarity(c2[0], c2[1], k * rng.normal(0, 0.12), math.exp(k * rng.normal(0, 0.08)),
                          math.exp(k * rng.normal(0, 0.03)), tx, ty)
        layers.append((prem, ox, oy, rel @ a_bg))

    img1 = np.zeros((h, w, 3), np.float32)
    img2 = np.zeros((h, w, 3), np.float32)
    flow = np.zeros((h, w, 2), np.float32)
    lab1 = np.zeros((h, w), np.float32)
    lab2 = np.zeros((h, w), np.float32)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]

    for k, (prem, ox, oy, a) in enumerate(layers):
        ph, pw = prem.shape[:2]
        # Frame 1: paste the patch where it overlaps the frame.
        x0, y0, x1, y1 = max(ox, 0), max(oy, 0), min(ox + pw, w), min(oy + ph, h)
        if x0 < x1 and y0 < y1:
            p = prem[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
            if k == 0:
                img1[y0:y1, x0:x1] = p
                cover = np.ones(p.shape[:2], bool)
            else:
                _over(img1[y0:y1, x0:x1], p)
                cover = p[..., 3] > 0.5
            lab1[y0:y1, x0:x1][cover] = k
            # Flow of this layer: A(p) - p, affine in p.
            gx, gy = xs[:, x0:x1], ys[y0:y1]
            fu = (a[0, 0] - 1) * gx + a[0, 1] * gy + a[0, 2]
            fv = a[1, 0] * gx + (a[1, 1] - 1) * gy + a[1, 2]
            flow[y0:y1, x0:x1, 0][cover] = fu.astype(np.float32)[cover]
            flow[y0:y1, x0:x1, 1][cover] = fv.astype(np.float32)[cover]
        # Frame 2: backward-map the patch through A over the bounding box of its image.
        qx0, qy0, qx1, qy1 = _corners_bbox(a, ox - 1, oy - 1, ox + pw, oy + ph)
        x0, y0 = max(int(math.floor(qx0)), 0), max(int(math.floor(qy0)), 0)
        x1, y1 = min(int(math.ceil(qx1)) + 1, w), min(int(math.ceil(qy1)) + 1, h)
        if x0 < x1 and y0 < y1:
            inv = np.linalg.inv(a)
            # ROI pixel (u, v) -> frame-2 (u + x0, v + y0) -> frame-1 via inv -> patch (- origin).
            shift = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], dtype=np.float64)
            m = inv @ shift
            m[0, 2] -= ox
            m[1, 2] -= oy
            p = cv2.warpAffine(prem, m[:2], (x1 - x0, y1 - y0),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            if k == 0:
                img2[y0:y1, x0:x1] = p
            else:
                _over(img2[y0:y1, x0:x1], p)
                lab2[y0:y1, x0:x1][p[..., 3] > 0.5] = k

    # Visibility: the surface seen at p in frame 1 must be the top one at p + flow in frame 2.
    mapx = flow[..., 0] + xs
    mapy = flow[..., 1] + ys
    seen = cv2.remap(lab2, mapx, mapy, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT, borderValue=-1)
    occ = seen != lab1
    return {
        "img1": cv2.convertScaleAbs(img1, alpha=255.0),
        "img2": cv2.convertScaleAbs(img2, alpha=255.0),
        "flow": flow,
        "valid": np.ones((h, w), bool),
        "occ": occ,
    }


def _over(dst: np.ndarray, prem: np.ndarray) -> None:
    """Composite a premultiplied RGBA patch over an RGB view in place: dst = dst (1 - a) + rgb."""
    a = prem[..., 3:4]
    # One fused expression and a single write-back: faster than in-place ops on a strided view.
    dst[...] = dst * (1.0 - a) + prem[..., :3]
