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

Every file that cannot be used is a one-line ``ValueError`` naming it, never a decoder's own error: the size is read
from the header first (PNG, JPEG, PNM/PAM/PFM, BMP, WebP, TIFF) and an image over :func:`max_pixels` (default
:data:`DEFAULT_MAX_PIXELS`, ``$FLOWCLI_MAX_PIXELS``) is refused before anything is decoded, so a tiny file whose
header claims 100000x100000 costs nothing; a PNG cut short is refused before libpng sees it (libpng would print its
own complaint on stderr).
"""
from __future__ import annotations

import errno
import os
import struct
import zlib
from pathlib import Path
from typing import Optional

import numpy as np

from flowcli.io.atomic import atomic_path

#: Lower-case extensions that :func:`read_image` and :func:`write_image` accept.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp")

#: Quality used for lossy outputs; previews should not show blocking artefacts.
JPEG_QUALITY = 95

#: Largest image :func:`read_image` decodes, in pixels (16384 x 16384): far beyond what the network can take in
#: memory, a quarter of OpenCV's own limit (2^30, ``CV_IO_MAX_IMAGE_PIXELS``). ``$FLOWCLI_MAX_PIXELS`` overrides it.
DEFAULT_MAX_PIXELS = 2 ** 28
MAX_PIXELS_ENV = "FLOWCLI_MAX_PIXELS"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Deflate cannot compress better than about 1032:1 (as in flowcli.io.flow)
_MAX_DEFLATE_RATIO = 1100


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


def max_pixels() -> int:
    """The pixel limit of :func:`read_image`: ``$FLOWCLI_MAX_PIXELS`` (an integer, ``1e9`` or ``2**30`` also do),
    else :data:`DEFAULT_MAX_PIXELS`. ValueError for a setting that is not a positive number."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    try:
        base, _, power = text.partition("**")
        value = int(base) ** int(power) if power and int(power) <= 64 else int(float(text))
    except (ValueError, OverflowError):
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive number of pixels")
    return value


def check_pixels(path: str | os.PathLike, width: int, height: int) -> None:
    """Refuse (one-line ValueError naming ``path`` and the limit) an image over :func:`max_pixels`."""
    limit = max_pixels()
    if width * height > limit:
        raise ValueError(f"{path}: image is {width}x{height} ({width * height:,} pixels), over the limit of "
                         f"{limit:,} pixels (set {MAX_PIXELS_ENV} to raise it)")


def _u16(data, at: int, order: str = ">") -> int:
    return struct.unpack_from(order + "H", data, at)[0]


def _u32(data, at: int, order: str = ">") -> int:
    return struct.unpack_from(order + "I", data, at)[0]


def _pnm_size(data: bytes) -> Optional[tuple[int, int]]:
    # P1-P6 and PF/Pf: magic, then width and height as decimal text, with '#' comments between tokens
    if data[:2] == b"P7":  # PAM: "WIDTH n" and "HEIGHT n" lines before ENDHDR
        fields = {}
        for line in data[:4096].split(b"\n")[1:]:
            parts = line.split(b"#", 1)[0].split()
            if parts[:1] == [b"ENDHDR"]:
                break
            if len(parts) == 2 and parts[1].isdigit():
                fields[parts[0]] = int(parts[1])
        return (fields[b"WIDTH"], fields[b"HEIGHT"]) if b"WIDTH" in fields and b"HEIGHT" in fields else None
    tokens, pos = [], 2
    head = data[:4096]
    while len(tokens) < 2 and pos < len(head):
        c = head[pos:pos + 1]
        if c == b"#":
            end = head.find(b"\n", pos)
            pos = len(head) if end < 0 else end + 1
        elif c.isspace():
            pos += 1
        else:
            end = pos
            while end < len(head) and not head[end:end + 1].isspace() and head[end:end + 1] != b"#":
                end += 1
            tokens.append(head[pos:end])
            pos = end
    if len(tokens) == 2 and all(t.isdigit() for t in tokens):
        return int(tokens[0]), int(tokens[1])
    return None


def _jpeg_size(data: bytes) -> Optional[tuple[int, int]]:
    # walk the marker segments up to the first start-of-frame (SOF0-SOF15 but DHT C4, JPG C8, DAC CC)
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length field
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        length = _u16(data, pos + 2)
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                return None
            return _u16(data, pos + 7), _u16(data, pos + 5)
        pos += 2 + length
    return None


def _webp_size(data: bytes) -> Optional[tuple[int, int]]:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return _u16(data, 26, "<") & 0x3FFF, _u16(data, 28, "<") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = _u32(data, 21, "<")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _tiff_size(data: bytes) -> Optional[tuple[int, int]]:
    order = "<" if data[:2] == b"II" else ">"
    try:
        ifd = _u32(data, 4, order)
        count = _u16(data, ifd, order)
        size = {}
        for k in range(count):
            at = ifd + 2 + 12 * k
            tag, kind = _u16(data, at, order), _u16(data, at + 2, order)
            if tag in (256, 257) and kind in (3, 4):
                size[tag] = _u16(data, at + 8, order) if kind == 3 else _u32(data, at + 8, order)
    except struct.error:
        return None
    return (size[256], size[257]) if 256 in size and 257 in size else None


def image_size(data) -> Optional[tuple[int, int]]:
    """``(width, height)`` from the start of an image file (bytes or a buffer; the first 64 KiB do for all but a
    JPEG with large metadata) for PNG, JPEG, PNM/PAM/PFM, BMP, WebP and TIFF, without decoding; None for another
    format or a header too short to say."""
    view = memoryview(data).cast("B")
    magic = bytes(view[:16])
    try:
        if magic[:8] == _PNG_SIGNATURE and magic[12:16] == b"IHDR":
            return _u32(view, 16), _u32(view, 20)
        if magic[:2] == b"\xff\xd8":
            return _jpeg_size(view)
        if magic[:1] == b"P" and len(magic) > 2 and magic[1] in b"1234567Ff":
            return _pnm_size(bytes(view[:4096]))
        if magic[:2] == b"BM":
            if _u32(view, 14, "<") == 12:  # OS/2 core header: 16-bit sizes
                return _u16(view, 18, "<"), _u16(view, 20, "<")
            return abs(struct.unpack_from("<i", view, 18)[0]), abs(struct.unpack_from("<i", view, 22)[0])
        if magic[:4] == b"RIFF" and magic[8:12] == b"WEBP":
            return _webp_size(bytes(view[:64]))
        if magic[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(view)
    except (struct.error, IndexError):
        return None
    return None


def png_problem(data) -> Optional[str]:
    """What is wrong with a whole PNG file's structure, or None: a chunk cut short, no end chunk, a critical chunk
    failing its checksum, or less image data than deflate (at most about 1032:1) could expand to the header's size.
    These are what libpng would otherwise complain about on stderr by itself (the last after allocating the image)."""
    data = memoryview(data).cast("B")
    pos, idat = len(_PNG_SIGNATURE), 0
    while pos + 8 <= len(data):
        length = _u32(data, pos)
        kind = bytes(data[pos + 4:pos + 8])
        name = kind.decode("latin-1")
        if pos + 12 + length > len(data):
            return (f"truncated PNG file: its {name!r} chunk at byte {pos} ends {pos + 12 + length - len(data)} "
                    f"bytes past the end of the file ({len(data)} bytes)")
        if kind[:1].isupper() and zlib.crc32(data[pos + 4:pos + 8 + length]) != _u32(data, pos + 8 + length):
            return f"corrupt PNG file: its {name!r} chunk at byte {pos} fails its checksum"
        if kind == b"IDAT":
            idat += length
        if kind == b"IEND":
            break
        pos += 12 + length
    else:
        return f"truncated PNG file: no end chunk ({len(data)} bytes)"
    if len(data) >= 26 and bytes(data[12:16]) == b"IHDR":
        w, h = _u32(data, 16), _u32(data, 20)
        channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(data[25], 1)
        raw = h * (1 + (w * channels * data[24] + 7) // 8)  # filter byte + packed samples per row (no interlace)
        if raw > _MAX_DEFLATE_RATIO * max(idat, 1):
            return (f"header says {w}x{h} ({raw:,} bytes of pixels) but the file holds {idat:,} bytes of image data, "
                    f"more than PNG compression can explain (truncated or forged header?)")
    return None


def _decode_error(exc: BaseException) -> str:
    # cv2.error text: "OpenCV(5.1.0) /path/loadsave.cpp:80: error: (-215:Assertion failed) pixels <= ... in function"
    text = str(getattr(exc, "err", "") or exc)
    text = " ".join(text.split("error:", 1)[-1].split())
    if "CV_IO_MAX_IMAGE" in text:
        return "over OpenCV's own size limit (raise it with the CV_IO_MAX_IMAGE_PIXELS environment variable)"
    return f"OpenCV cannot decode this file as an image ({text[:160]})"


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file into HxWx3 uint8 RGB (see the module docstring for the conversion rule).

    Any format OpenCV decodes is accepted, whatever the extension. Raises FileNotFoundError for a missing file and
    a one-line ValueError naming the file when it cannot be decoded, is cut short, or its header declares more
    pixels than :func:`max_pixels` (checked before decoding).
    """
    import cv2  # imported here so that importing flowcli.io stays cheap

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such image file", str(p))
    if p.is_dir():
        raise ValueError(f"{p}: is a directory, not an image file")
    # np.fromfile + imdecode rather than cv2.imread: works with non-ASCII paths on every platform.
    data = np.fromfile(p, dtype=np.uint8)
    size = image_size(data)
    if size is not None:
        check_pixels(p, *size)
    problem = png_problem(data) if data[:8].tobytes() == _PNG_SIGNATURE else None
    if problem:
        raise ValueError(f"{p}: {problem}")
    try:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as exc:  # e.g. a header over OpenCV's limit in a format read above does not know
        raise ValueError(f"{p}: {_decode_error(exc)}") from None
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
