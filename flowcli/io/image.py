"""Images in and out, in one documented form: HxWx3 uint8 RGB.

Conversion rule (used by :func:`as_rgb8`, :func:`read_image` and ``flowcli.estimate_flow``):

* uint8 stays as is; uint16 is mapped to 8 bit by rounding ``value / 257`` (65535 -> 255);
  float arrays are taken to be in [0, 1], clipped and scaled by 255 (rounded).
* HxW or HxWx1 grayscale is repeated into three channels.
* HxWx4 RGBA drops the alpha channel (no compositing: flow is about the pixels, not their opacity).

:func:`read_image` reads anything OpenCV decodes (8 or 16 bit; gray, RGB or RGBA) into that form;
:func:`write_image` writes it atomically (temporary file in the same folder, then rename), with the
format chosen by the extension. EXIF orientation is ignored on purpose: both frames of a pair must be
read the same way, and the pixel grid is what the flow refers to.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np

from flowcli.io.atomic import atomic_path

#: Lower-case extensions that :func:`read_image` and :func:`write_image` accept.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")

#: Quality used for lossy outputs; previews should not show blocking artefacts.
JPEG_QUALITY = 95


def as_rgb8(image: np.ndarray, *, name: str = "image") -> np.ndarray:
    """Convert an array to HxWx3 uint8 RGB by the module's rule; raise ValueError naming ``name``."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected an HxW, HxWx3 or HxWx4 image, got shape {arr.shape}")
    arr = arr[:, :, :3]
    if arr.dtype == np.uint8:
        out = arr
    elif arr.dtype == np.uint16:
        out = np.round(arr.astype(np.float32) / 257.0).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        out = np.round(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    else:
        raise ValueError(f"{name}: unsupported image dtype {arr.dtype} (expected uint8, uint16 or float)")
    return np.ascontiguousarray(out)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into HxWx3 uint8 RGB (see the module docstring for the conversion rule).

    Any format OpenCV decodes is accepted, whatever the extension. Raises FileNotFoundError for a
    missing file and a one-line ValueError naming the file when it cannot be decoded.
    """
    import cv2  # imported here so that importing flowcli.io stays cheap

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such image file", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not an image file")
    # np.fromfile + imdecode rather than cv2.imread: works with non-ASCII paths on every platform.
    data = np.fromfile(p, dtype=np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise ValueError(f"{p}: OpenCV cannot decode this file as an image ({data.size} bytes)")
    if img.ndim == 3 and img.shape[2] == 3:
        img = img[:, :, ::-1]  # BGR -> RGB
    elif img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, [2, 1, 0, 3]]  # BGRA -> RGBA
    return as_rgb8(img, name=str(p))


def _write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` (separate so that tests can simulate a failing disk)."""
    with open(path, "wb") as f:
        f.write(payload)


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB image (anything :func:`as_rgb8` accepts) to ``path`` atomically.

    The format follows the extension (PNG, JPEG at quality 95, or another of :data:`IMAGE_EXTENSIONS`).
    The image is encoded in memory, written to a temporary file beside the target and renamed over
    it, so on any error the target is left as it was. Raises ValueError for an unknown extension or an
    image that cannot be converted or encoded.
    """
    import cv2

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"{p}: unsupported image extension {ext or '(none)'!r} "
                         f"(supported: {', '.join(IMAGE_EXTENSIONS)})")
    rgb = as_rgb8(image, name=str(p))
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if ext in (".jpg", ".jpeg") else []
    if ext == ".pgm":
        ok, enc = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), params)
    else:
        ok, enc = cv2.imencode(ext, np.ascontiguousarray(rgb[:, :, ::-1]), params)
    if not ok:
        raise ValueError(f"{p}: OpenCV could not encode a {rgb.shape[1]}x{rgb.shape[0]} image as {ext}")
    with atomic_path(p) as tmp:
        _write_bytes(tmp, enc.tobytes())
