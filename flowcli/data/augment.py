"""Training-time augmentation of flow samples in the style of FlowNet2/LiteFlowNet (numpy + OpenCV).

:func:`augment_pair` applies, with a ``numpy.random.Generator``:

* a shared geometric transform of both images (random crop position, rotation, zoom, squeeze),
* a small extra transform of image 2 only (translation, rotation, zoom),
* the matching, exact transformation of the flow, valid and occlusion masks (:func:`warp_pair`),
* photometric changes: a shared colour/gamma/contrast/brightness jitter, a small per-image one,
  and additive Gaussian noise.

Images stay HxWx3 **uint8** RGB (the sample format of :mod:`flowcli.data` is unchanged, and no
``"float"`` key is added): the photometric chain is a per-channel lookup table on the uint8
values plus noise, rounded once.  Converting to float for the network is the trainer's job.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

__all__ = ["augment_pair", "warp_pair", "photometric", "sample_transforms"]

# (lo, hi) of the uniform shared geometric draws at strength 1; FlowNet2's ranges, rotation halved:
# the crop must stay inside the source, and at +-0.4 rad most 448x320 crops of a 512x384 chair
# pair could only fit by zooming far in.
ROTATE = 0.2
LOG_ZOOM = (-0.2, 0.6)
LOG_SQUEEZE = 0.3
# Standard deviations of image 2's relative transform at strength 1 (translation in crop sizes).
REL_TRANSLATE = 0.03
REL_ROTATE = 0.03
REL_LOG_ZOOM = 0.03
# Photometric draws at strength 1: (shared std, per-image std).
LOG_GAMMA = (0.15, 0.02)
BRIGHTNESS = (0.05, 0.02)
LOG_CONTRAST = (0.15, 0.02)
LOG_COLOR = (0.1, 0.02)
NOISE_MAX = 0.06


def _rotation_zoom(angle: float, zx: float, zy: float) -> np.ndarray:
    """2x2 matrix mapping output offsets to source offsets: rotate after scaling by 1/zoom."""
    ca, sa = math.cos(angle), math.sin(angle)
    return np.array([[ca, -sa], [sa, ca]]) @ np.diag([1.0 / zx, 1.0 / zy])


def sample_transforms(
    rng: np.random.Generator,
    src_hw: Tuple[int, int],
    crop: Tuple[int, int],
    strength: float = 1.0,
    tries: int = 20,
    relative: float = 1.0,
) -> Tuple[np.ndarray, np.ndarray]:
    """Draw the augmentation's geometry; returns 3x3 ``(a1, a2)`` mapping crop pixels to source pixels.

    ``img1' = img1 o a1`` and ``img2' = img2 o a2``.  The crop footprint of ``a1`` always lies inside
    the source: draws that do not fit are redrawn (``tries`` times) and then zoomed in just enough.
    With ``strength == 0`` both are the same integer translation (a plain random crop). ``relative`` scales
    image 2's relative transform alone (it adds a global motion of ~0.03 crop widths to every pair).
    """
    H, W = int(src_hw[0]), int(src_hw[1])
    h, w = int(crop[0]), int(crop[1])
    s = float(strength)
    cc = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    if s == 0.0 and h <= H and w <= W:
        x0, y0 = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
        a = np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1]])
        return a, a.copy()
    lin = np.eye(2)
    for _ in range(max(1, tries)):
        zoom = math.exp(rng.uniform(*LOG_ZOOM) * s)
        squeeze = math.exp(rng.uniform(-LOG_SQUEEZE, LOG_SQUEEZE) * s)
        lin = _rotation_zoom(rng.uniform(-ROTATE, ROTATE) * s, zoom * squeeze, zoom / squeeze)
        ex, ey = _half_extent(lin, h, w)
        if 2 * ex <= W - 1 and 2 * ey <= H - 1:
            break
    ex, ey = _half_extent(lin, h, w)
    k = min(1.0, (W - 1) / (2 * ex) if ex > 0 else 1.0, (H - 1) / (2 * ey) if ey > 0 else 1.0)
    lin = lin * k  # zoom in just enough for the footprint to fit (small sources, big crops)
    ex, ey = ex * k, ey * k
    # Uniform placement over every position where the footprint fits (a random crop).
    cs = np.array([rng.uniform(ex, W - 1 - ex), rng.uniform(ey, H - 1 - ey)])
    a1 = np.eye(3)
    a1[:2, :2] = lin
    a1[:2, 2] = cs - lin @ cc
    # Image 2's relative transform, in crop coordinates about the crop centre.
    r = s * float(relative)
    rel_zoom = math.exp(rng.normal(0, REL_LOG_ZOOM) * r)
    rel_lin = _rotation_zoom(rng.normal(0, REL_ROTATE) * r, rel_zoom, rel_zoom)
    t = rng.normal(0, REL_TRANSLATE, 2) * r * np.array([w, h])
    rel = np.eye(3)
    rel[:2, :2] = rel_lin
    rel[:2, 2] = cc - rel_lin @ cc + t
    return a1, a1 @ rel


def _half_extent(lin: np.ndarray, h: int, w: int) -> Tuple[float, float]:
    """Half width/height of the source footprint of an h x w crop under ``lin``."""
    return (0.5 * (abs(lin[0, 0]) * (w - 1) + abs(lin[0, 1]) * (h - 1)),
            0.5 * (abs(lin[1, 0]) * (w - 1) + abs(lin[1, 1]) * (h - 1)))


def _plain_crop(sample: dict, a1: np.ndarray, a2: np.ndarray, h: int, w: int) -> Optional[dict]:
    """The sample cut out by slicing when both maps are the same integer translation inside the source (exact, and
    no resampling blur), else None."""
    plain = _integer_translation(a1, a2)
    if plain is None:
        return None
    x0, y0 = plain
    src_h, src_w = sample["img1"].shape[:2]
    if not (0 <= x0 and 0 <= y0 and x0 + w <= src_w and y0 + h <= src_h):
        return None
    out = dict(sample)
    sl = (slice(y0, y0 + h), slice(x0, x0 + w))
    for key in ("img1", "img2", "flow", "valid", "occ"):
        if sample.get(key) is not None:
            out[key] = np.ascontiguousarray(sample[key][sl])
    if out.get("occ") is not None and out.get("flow") is not None:
        out["occ"] = out["occ"] | _leaves(out["flow"], h, w)
    return out


def warp_pair(sample: dict, a1: np.ndarray, a2: np.ndarray, crop: Tuple[int, int]) -> dict:
    """Resample a sample through 3x3 maps ``a1``/``a2`` (crop pixel -> source pixel); returns a new dict.

    ``img1'(x) = img1(a1 x)``, ``img2'(x) = img2(a2 x)`` (bilinear; image 2 reflects at the border)
    and, for a pixel ``x`` of the crop, ``flow'(x) = a2^-1(a1 x + flow(a1 x)) - x`` with the flow
    sampled bilinearly at ``a1 x``.  ``valid'`` is True only where all bilinear neighbours of
    ``a1 x`` are valid source pixels (so sparse KITTI ground truth is never blended with holes).
    ``occ'`` is the source mask at ``a1 x`` (nearest), plus the pixels whose target leaves the crop.
    Other keys are copied.
    """
    h, w = int(crop[0]), int(crop[1])
    cropped = _plain_crop(sample, a1, a2, h, w)
    if cropped is not None:
        return cropped
    out = dict(sample)
    inv = cv2.WARP_INVERSE_MAP
    m1, m2 = a1[:2].astype(np.float64), a2[:2].astype(np.float64)
    out["img1"] = cv2.warpAffine(sample["img1"], m1, (w, h), flags=cv2.INTER_LINEAR | inv,
                                 borderMode=cv2.BORDER_REFLECT_101)
    out["img2"] = cv2.warpAffine(sample["img2"], m2, (w, h), flags=cv2.INTER_LINEAR | inv,
                                 borderMode=cv2.BORDER_REFLECT_101)
    flow = sample.get("flow")
    if flow is None:
        return out
    valid = sample.get("valid")
    if valid is None:
        valid = np.ones(flow.shape[:2], bool)
    valid = valid & np.isfinite(flow).all(axis=-1)
    # Zero the invalid vectors first: a NaN or garbage vector with weight 0 would still poison
    # its bilinear neighbours.
    clean = np.where(valid[..., None], flow, np.float32(0)).astype(np.float32)
    f = cv2.warpAffine(clean, m1, (w, h), flags=cv2.INTER_LINEAR | inv, borderMode=cv2.BORDER_CONSTANT)
    v = cv2.warpAffine(valid.astype(np.float32), m1, (w, h), flags=cv2.INTER_LINEAR | inv,
                       borderMode=cv2.BORDER_CONSTANT)
    # a2^-1 (a1 x + f) - x  =  (r x - x) + L f   with r = a2^-1 a1 and L the linear part of a2^-1.
    a2i = np.linalg.inv(a2)
    r = a2i @ a1
    lin = a2i[:2, :2]
    xs = np.arange(w, dtype=np.float64)[None, :]
    ys = np.arange(h, dtype=np.float64)[:, None]
    # cv2.transform applies the 2x2 part to every vector; the affine term is computed in float64
    # (pixel coordinates times small matrix entries) and added once in float32.
    new_flow = cv2.transform(f, lin.astype(np.float32))
    new_flow[..., 0] += ((r[0, 0] - 1) * xs + r[0, 1] * ys + r[0, 2]).astype(np.float32)
    new_flow[..., 1] += (r[1, 0] * xs + (r[1, 1] - 1) * ys + r[1, 2]).astype(np.float32)
    new_valid = v >= 0.999
    new_flow[~new_valid] = 0.0
    out["flow"] = new_flow
    out["valid"] = new_valid
    occ = sample.get("occ")
    if occ is not None:
        o = cv2.warpAffine(occ.astype(np.uint8), m1, (w, h), flags=cv2.INTER_NEAREST | inv,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=1)
        out["occ"] = (o > 0) | _leaves(new_flow, h, w)
    return out


def _integer_translation(a1: np.ndarray, a2: np.ndarray) -> Optional[Tuple[int, int]]:
    """(x0, y0) when both maps are the same whole-pixel translation, else None."""
    if not np.array_equal(a1, a2) or not np.array_equal(a1[:2, :2], np.eye(2)):
        return None
    t = a1[:2, 2]
    if not np.array_equal(t, np.round(t)):
        return None
    return int(t[0]), int(t[1])


def _leaves(flow: np.ndarray, h: int, w: int) -> np.ndarray:
    """True where x + flow(x) falls outside the h x w frame (that point is not seen in frame 2)."""
    tx = flow[..., 0] + np.arange(w, dtype=np.float32)[None, :]
    ty = flow[..., 1] + np.arange(h, dtype=np.float32)[:, None]
    return (tx < -0.5) | (tx > w - 0.5) | (ty < -0.5) | (ty > h - 0.5)


def photometric(img1: np.ndarray, img2: np.ndarray, rng: np.random.Generator,
                strength: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Colour, gamma, contrast, brightness jitter and noise for a uint8 RGB pair; returns uint8 RGB.

    One shared draw plus a small per-image draw (so brightness constancy is only approximately
    true, as in FlowNet2), clamped to [0, 1], then Gaussian noise of std U(0, 0.06) * strength
    per image.
    """
    s = float(strength)
    if s == 0.0:
        return img1, img2
    shared = _color_params(rng, 0, s)
    x = np.arange(256, dtype=np.float64) / 255.0
    out = []
    for img in (img1, img2):
        own = _color_params(rng, 1, s)
        color = shared["color"] * own["color"]
        gamma = shared["gamma"] * own["gamma"]
        contrast = shared["contrast"] * own["contrast"]
        bright = shared["bright"] + own["bright"]
        # The whole chain is a per-channel function of the 8-bit value: one lookup table.
        y = np.clip(x[:, None] * color[None, :], 0.0, 1.0) ** gamma
        y = np.clip((y - 0.5) * contrast + 0.5 + bright, 0.0, 1.0)
        lut = np.round(y * 255.0).astype(np.uint8).reshape(1, 256, 3)
        res = cv2.LUT(np.ascontiguousarray(img), lut)
        sigma = rng.uniform(0.0, NOISE_MAX) * s * 255.0
        if sigma > 0:
            noise = rng.standard_normal(res.shape, dtype=np.float32) * np.float32(sigma)
            res = cv2.add(res, noise, dtype=cv2.CV_8U)  # rounds and saturates to [0, 255]
        out.append(res)
    return out[0], out[1]


def _color_params(rng: np.random.Generator, which: int, s: float) -> dict:
    return {
        "color": np.exp(rng.normal(0, LOG_COLOR[which] * s, 3)),
        "gamma": math.exp(rng.normal(0, LOG_GAMMA[which] * s)),
        "contrast": math.exp(rng.normal(0, LOG_CONTRAST[which] * s)),
        "bright": rng.normal(0, BRIGHTNESS[which] * s),
    }


def augment_pair(
    sample: dict,
    rng: np.random.Generator,
    crop: Sequence[int] = (320, 448),
    strength: float = 1.0,
    *,
    geometric: bool = True,
    photometric_aug: bool = True,
    relative: float = 1.0,
) -> dict:
    """Augment a sample and crop it to ``crop=(h, w)``; returns a new sample dict (uint8 images).

    ``strength`` scales every random magnitude (0 gives a plain random crop, unchanged colours).
    ``geometric=False`` keeps only the random crop; ``photometric_aug=False`` skips the colour
    changes and noise.  Sources smaller than the crop are zoomed in to fit.
    """
    if float(strength) < 0:
        raise ValueError(f"augment_pair: strength must be >= 0, got {strength}")
    crop = (int(crop[0]), int(crop[1]))
    src = sample["img1"].shape[:2]
    a1, a2 = sample_transforms(rng, src, crop, strength if geometric else 0.0, relative=relative)
    out = warp_pair(sample, a1, a2, crop)
    if photometric_aug:
        out["img1"], out["img2"] = photometric(out["img1"], out["img2"], rng, strength)
    return out
