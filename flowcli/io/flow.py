"""Optical-flow files in and out: Middlebury ``.flo``, KITTI 16-bit PNG, PFM, ``.npy`` and ``.npz``.

Every reader returns the same pair ``(flow, valid)``:

* ``flow``: HxWx2 float32; channel 0 is u (pixels rightwards), channel 1 is v (pixels downwards), so
  pixel (x, y) of frame 1 moves to (x + u, y + v) in frame 2.
* ``valid``: HxW bool. Where it is False the flow is unknown; those pixels hold 0 in ``flow`` so that
  arithmetic on the whole array stays finite (always mask with ``valid`` before using values).

NaN in a file or in an array given to :func:`write_flow` means "unknown" in every format.

Per format (chosen by the extension, case-insensitive):

* ``.flo`` (Middlebury, Baker et al. 2011): float32 magic 202021.25, int32 width, int32 height, then
  float32 u, v interleaved row by row, all little-endian (a byte-swapped file is read as well).
  A component with absolute value above 1e9 (or NaN) marks the pixel unknown; unknown pixels are
  written as 1e10.
* ``.png`` (KITTI): 16-bit RGB PNG, u = (R - 2^15) / 64, v = (G - 2^15) / 64, B != 0 means valid.
  Values are rounded to 1/64 px; values beyond +-(2^15 - 1)/64 px (about 512 px) are clamped with a
  warning that says how many. Unknown pixels are written as 0 in all three channels.
* ``.pfm`` (as FlyingThings3D uses it): ``PF`` header (3 channels: u, v and an unused third), width and
  height, a scale whose sign gives the byte order (negative: little-endian), rows stored bottom-up.
  Both byte orders are read; writing uses little-endian and a zero third channel. Unknown = NaN.
* ``.npy``: one HxWx2 floating-point array (float16/32/64; anything else is refused). Unknown = NaN.
* ``.npz``: member ``flow`` (as ``.npy``) and optional member ``valid`` (HxW bool or integer).
  Written compressed, with NaN at unknown pixels so that readers ignoring ``valid`` still see them.

Corrupt input raises a one-line ``ValueError`` naming the file and the problem; a missing file raises
``FileNotFoundError``. Sizes in headers are checked against the bytes actually present *before* any
array is allocated, so a header that claims 100000x100000 fails at once.
"""
from __future__ import annotations

import errno
import io
import math
import os
import struct
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from flowcli.io.atomic import atomic_path

FLOW_EXTENSIONS: tuple[str, ...] = (".flo", ".png", ".pfm", ".npy", ".npz")

FLO_MAGIC = 202021.25
#: Middlebury convention: a component above this (in absolute value) marks the pixel unknown.
FLO_UNKNOWN_THRESHOLD = 1e9
#: Value written into .flo files for unknown pixels.
FLO_UNKNOWN_VALUE = 1e10

#: Largest |u| or |v| a KITTI PNG stores without clamping, in 1/64 px units.
KITTI_LIMIT = 2**15 - 1
_KITTI_OFFSET = 2**15

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Deflate cannot compress better than about 1032:1, so a PNG whose header promises more raw bytes than
# that ratio allows is lying (or truncated); refuse it before the decoder allocates the image.
_MAX_DEFLATE_RATIO = 1100
_CHUNK = 1 << 24


def _err(path: Path, problem: str) -> ValueError:
    """A one-line ValueError ``"<path>: <problem>"``."""
    return ValueError(f"{path}: " + " ".join(str(problem).split()))


def _check_readable(path: str | os.PathLike) -> tuple[Path, str]:
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FLOW_EXTENSIONS:
        raise _err(p, f"unsupported flow file extension {ext or '(none)'!r} "
                      f"(supported: {', '.join(FLOW_EXTENSIONS)})")
    if not p.exists():
        raise FileNotFoundError(errno.ENOENT, "no such flow file", str(p))
    if p.is_dir():
        raise _err(p, "is a directory, not a flow file")
    return p, ext


def _read_exact(f: BinaryIO, nbytes: int, path: Path, what: str) -> bytearray:
    """Read exactly ``nbytes``; grow the buffer only with data that really arrives (never trust a header)."""
    buf = bytearray()
    while len(buf) < nbytes:
        chunk = f.read(min(_CHUNK, nbytes - len(buf)))
        if not chunk:
            raise _err(path, f"truncated: {what} needs {nbytes} bytes but only {len(buf)} are present")
        buf += chunk
    return buf


def _finish(flow: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Common post-processing: float32, NaN/inf -> invalid, invalid pixels zeroed."""
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    valid = np.asarray(valid, dtype=bool) & np.isfinite(flow).all(axis=2)
    if not valid.all():
        if not flow.flags.writeable:
            flow = flow.copy()
        flow[~valid] = 0.0
    return flow, np.ascontiguousarray(valid)


# ----------------------------------------------------------------------------------------- reading


def read_flow(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a flow file; the format follows the extension (see :data:`FLOW_EXTENSIONS`).

    Returns ``(flow, valid)``: flow HxWx2 float32 (u, v in pixels), valid HxW bool, with flow set to 0
    where valid is False. Raises FileNotFoundError for a missing file and a one-line ValueError naming
    the file for an unsupported extension or a corrupt file.
    """
    p, ext = _check_readable(path)
    reader = {".flo": _read_flo, ".png": _read_kitti_png, ".pfm": _read_pfm,
              ".npy": _read_npy_file, ".npz": _read_npz}[ext]
    return reader(p)


def _read_flo(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(12)
        if len(head) < 12:
            raise _err(p, f"truncated: file is {len(head)} bytes, a .flo header needs 12")
        order = "<"
        magic = struct.unpack("<f", head[:4])[0]
        if magic != FLO_MAGIC:
            if struct.unpack(">f", head[:4])[0] == FLO_MAGIC:
                order = ">"  # written on a big-endian machine: rare, but unambiguous
            else:
                raise _err(p, f"bad magic {magic!r} (expected {FLO_MAGIC})")
        w, h = struct.unpack(order + "ii", head[4:12])
        if w <= 0 or h <= 0:
            raise _err(p, f"bad size in header: {w}x{h}")
        need = w * h * 2 * 4  # Python ints: no overflow however large the header claims
        have = size - 12
        if have != need:
            raise _err(p, f"header says {w}x{h} ({need} bytes of data) but file holds {have} bytes of data")
        buf = _read_exact(f, need, p, f"a {w}x{h} flow")
    flow = np.frombuffer(buf, dtype=order + "f4").reshape(h, w, 2)
    with np.errstate(invalid="ignore"):
        valid = (np.abs(flow) <= FLO_UNKNOWN_THRESHOLD).all(axis=2)  # NaN compares False -> unknown
    return _finish(flow, valid)


def _read_kitti_png(p: Path) -> tuple[np.ndarray, np.ndarray]:
    import cv2  # OpenCV only where PNG decoding is needed

    data = p.read_bytes()
    if data[:8] != _PNG_SIGNATURE:
        raise _err(p, f"bad magic {data[:8]!r} (not a PNG file)")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise _err(p, f"truncated or corrupt PNG header ({len(data)} bytes)")
    w, h = struct.unpack(">II", data[16:24])
    depth, color_type = data[24], data[25]
    kinds = {0: "gray", 2: "RGB", 3: "palette", 4: "gray+alpha", 6: "RGBA"}
    if depth != 16 or color_type != 2:
        raise _err(p, f"expected a 16-bit RGB KITTI flow PNG, got {depth}-bit "
                      f"{kinds.get(color_type, f'color type {color_type}')}")
    if w == 0 or h == 0:
        raise _err(p, f"bad size in header: {w}x{h}")
    raw = h * (1 + 6 * w)
    if raw > _MAX_DEFLATE_RATIO * len(data):
        raise _err(p, f"header says {w}x{h} ({raw} bytes of pixels) but file holds {len(data)} bytes, "
                      "more than PNG compression can explain")
    from flowcli.io.image import check_pixels, png_problem

    check_pixels(p, w, h)
    problem = png_problem(data)  # a file cut short: refused here rather than complained about by libpng on stderr
    if problem:
        raise _err(p, f"cannot decode the {w}x{h} 16-bit PNG: {problem}")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise _err(p, f"cannot decode the {w}x{h} 16-bit PNG: {' '.join(str(exc).split('error:', 1)[-1].split())}") \
            from None
    if img is None or img.dtype != np.uint16 or img.shape != (h, w, 3):
        got = "nothing" if img is None else f"{img.dtype} {img.shape}"
        raise _err(p, f"cannot decode the {w}x{h} 16-bit PNG (truncated or corrupt?); decoder gave {got}")
    # OpenCV gives BGR: B = valid flag, G = v, R = u.
    flow = (img[:, :, [2, 1]].astype(np.float32) - _KITTI_OFFSET) / 64.0
    valid = img[:, :, 0] != 0
    return _finish(flow, valid)


def _pfm_line(f: BinaryIO, p: Path, what: str) -> str:
    line = f.readline(80)  # bounded: a binary file without newlines must not be read whole
    if not line.endswith(b"\n"):
        raise _err(p, f"bad PFM header: no end of line after the {what} ({line[:20]!r})")
    try:
        return line.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _err(p, f"bad PFM header: {what} is not text ({line[:20]!r})") from None


def _read_pfm(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        first = f.readline(80)  # bounded: a binary file without newlines must not be read whole
        kind = first.strip()
        if kind not in (b"PF", b"Pf"):
            raise _err(p, f"bad magic {first[:8]!r} (expected 'PF' or 'Pf')")
        channels = 3 if kind == b"PF" else 1
        tokens = _pfm_line(f, p, "size").split()
        if len(tokens) == 1:  # some writers put height on its own line
            tokens += _pfm_line(f, p, "size").split()
        try:
            w, h = (int(t) for t in tokens)
        except ValueError:
            raise _err(p, f"bad PFM size line {' '.join(tokens)!r}") from None
        scale_text = _pfm_line(f, p, "scale")
        try:
            scale = float(scale_text)
        except ValueError:
            raise _err(p, f"bad PFM scale {scale_text!r}") from None
        if w <= 0 or h <= 0:
            raise _err(p, f"bad size in header: {w}x{h}")
        if scale == 0 or not math.isfinite(scale):
            raise _err(p, f"bad PFM scale {scale_text!r} (its sign gives the byte order)")
        if channels != 3:
            raise _err(p, "is a 1-channel (Pf) PFM; flow needs a 3-channel (PF) file")
        need = w * h * channels * 4
        have = size - f.tell()
        if have != need:
            raise _err(p, f"header says {w}x{h}x{channels} ({need} bytes of data) but file holds "
                          f"{have} bytes of data")
        buf = _read_exact(f, need, p, f"a {w}x{h} PFM")
    order = "<" if scale < 0 else ">"
    data = np.frombuffer(buf, dtype=order + "f4").reshape(h, w, channels)
    flow = data[::-1, :, :2]  # PFM stores the bottom row first
    return _finish(flow, np.ones((h, w), bool))


def _npy_header(f: BinaryIO, p: Path, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    fmt = np.lib.format
    try:
        version = fmt.read_magic(f)
        if version == (1, 0):
            return fmt.read_array_header_1_0(f)
        if version == (2, 0):
            return fmt.read_array_header_2_0(f)
        raise ValueError(f"unsupported .npy format version {version}")
    except (ValueError, SyntaxError, EOFError) as e:
        raise _err(p, f"bad .npy header in {what}: {e}") from None


def _read_npy_stream(f: BinaryIO, avail: int, p: Path, what: str, kinds: str) -> np.ndarray:
    """Read one .npy array from ``f`` which holds ``avail`` bytes in total; dtype kind must be in ``kinds``."""
    start = f.tell()
    shape, fortran, dtype = _npy_header(f, p, what)
    if dtype.hasobject or dtype.kind not in kinds or dtype.fields is not None:
        wanted = {"f": "floating point", "biuf": "bool, integer or floating point"}.get(kinds, kinds)
        raise _err(p, f"{what} has dtype {dtype}, expected {wanted}")
    count = math.prod(shape)
    need = count * dtype.itemsize
    have = avail - (f.tell() - start)
    if have != need:
        raise _err(p, f"header of {what} says shape {shape} {dtype} ({need} bytes of data) but "
                      f"{have} bytes of data are present")
    buf = _read_exact(f, need, p, what)
    arr = np.frombuffer(buf, dtype=dtype, count=count)
    return arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)


def _check_flow_shape(arr: np.ndarray, p: Path, what: str) -> None:
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise _err(p, f"{what} has shape {arr.shape}, expected (H, W, 2)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise _err(p, f"{what} is empty: shape {arr.shape}")


def _read_npy_file(p: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(p, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        arr = _read_npy_stream(f, size, p, "the array", "f")
    _check_flow_shape(arr, p, "the array")
    return _finish(arr, np.ones(arr.shape[:2], bool))


def _read_npz(p: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
        raise _err(p, f"not a valid .npz (zip) archive: {e}") from None
    with zf:
        names = zf.namelist()
        if "flow.npy" not in names:
            shown = ", ".join(n.removesuffix(".npy") for n in names[:10]) or "nothing"
            raise _err(p, f"no 'flow' array in the .npz (it holds: {shown})")
        try:
            flow = _npz_member(zf, "flow", p, "f")
            _check_flow_shape(flow, p, "member 'flow'")
            valid = np.ones(flow.shape[:2], bool)
            if "valid.npy" in names:
                v = _npz_member(zf, "valid", p, "biuf")
                if v.shape != flow.shape[:2]:
                    raise _err(p, f"member 'valid' has shape {v.shape}, expected {flow.shape[:2]}")
                valid = v != 0
        except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError) as e:
            raise _err(p, f"corrupt .npz archive: {e}") from None
    return _finish(flow, valid)


def _npz_member(zf: zipfile.ZipFile, name: str, p: Path, kinds: str) -> np.ndarray:
    info = zf.getinfo(name + ".npy")
    with zf.open(info) as f:
        # file_size comes from the archive and may lie too; _read_exact only grows with real data.
        return _read_npy_stream(f, info.file_size, p, f"member {name!r}", kinds)


# ----------------------------------------------------------------------------------------- writing


def _prepare(flow: np.ndarray, valid: np.ndarray | None, p: Path) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``flow``/``valid`` and return (float32 copy, bool mask with NaN/inf marked invalid)."""
    arr = np.asarray(flow)
    if arr.ndim != 3 or arr.shape[2] != 2:
        raise _err(p, f"flow must be (H, W, 2), got {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise _err(p, f"flow must be non-empty, got {arr.shape}")
    if arr.dtype.kind not in "iuf":
        raise _err(p, f"flow must be a floating-point (or integer) array, got dtype {arr.dtype}")
    out = arr.astype(np.float32)  # always a copy: the caller's array is never modified
    ok = np.isfinite(out).all(axis=2)
    if valid is not None:
        v = np.asarray(valid)
        if v.shape != arr.shape[:2]:
            raise _err(p, f"valid must be (H, W) = {arr.shape[:2]}, got {v.shape}")
        ok &= v.astype(bool)
    return out, ok


def write_flow(path: str | os.PathLike, flow: np.ndarray, valid: np.ndarray | None = None) -> None:
    """Write ``flow`` (HxWx2, u then v, pixels) to ``path``; the format follows the extension.

    ``valid`` (HxW bool, optional) marks known pixels; NaN/inf in ``flow`` are unknown as well. Each
    format stores unknown pixels its own way (see the module docstring). The file is written to a
    temporary name and renamed, so readers never see a partial file. Raises ValueError for an
    unsupported extension or a badly shaped array; KITTI PNG clamps out-of-range values with a warning.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in FLOW_EXTENSIONS:
        raise _err(p, f"unsupported flow file extension {ext or '(none)'!r} "
                      f"(supported: {', '.join(FLOW_EXTENSIONS)})")
    data, ok = _prepare(flow, valid, p)
    # Encode fully in memory first: an encoding error then leaves no file at all.
    payload = {".flo": _encode_flo, ".png": _encode_kitti_png, ".pfm": _encode_pfm,
               ".npy": _encode_npy, ".npz": _encode_npz}[ext](data, ok, p)
    with atomic_path(p) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)


def _encode_flo(data: np.ndarray, ok: np.ndarray, p: Path) -> bytes:
    h, w = ok.shape
    data[~ok] = FLO_UNKNOWN_VALUE
    return struct.pack("<fii", FLO_MAGIC, w, h) + data.astype("<f4").tobytes()


def _encode_pfm(data: np.ndarray, ok: np.ndarray, p: Path) -> bytes:
    h, w = ok.shape
    data[~ok] = np.nan
    three = np.zeros((h, w, 3), "<f4")
    three[:, :, :2] = data
    return f"PF\n{w} {h}\n-1.0\n".encode("ascii") + three[::-1].tobytes()


def _encode_npy(data: np.ndarray, ok: np.ndarray, p: Path) -> bytes:
    data[~ok] = np.nan
    buf = io.BytesIO()
    np.save(buf, data, allow_pickle=False)
    return buf.getvalue()


def _encode_npz(data: np.ndarray, ok: np.ndarray, p: Path) -> bytes:
    data[~ok] = np.nan
    buf = io.BytesIO()
    np.savez_compressed(buf, flow=data, valid=ok)
    return buf.getvalue()


def _encode_kitti_png(data: np.ndarray, ok: np.ndarray, p: Path) -> bytes:
    import cv2

    h, w = ok.shape
    q = np.round(data.astype(np.float64) * 64.0)
    n_clamped = int(np.count_nonzero(np.abs(q[ok]) > KITTI_LIMIT))
    if n_clamped:
        warnings.warn(f"{p}: {n_clamped} flow value(s) outside the KITTI PNG range "
                      f"+-{KITTI_LIMIT / 64:.4f} px were clamped", stacklevel=3)
    q[~ok] = 0.0  # NaN must not reach the integer cast; these pixels are zeroed below anyway
    q = np.clip(q, -KITTI_LIMIT, KITTI_LIMIT) + _KITTI_OFFSET
    bgr = np.zeros((h, w, 3), np.uint16)
    bgr[:, :, 2] = q[:, :, 0]  # R = u
    bgr[:, :, 1] = q[:, :, 1]  # G = v
    bgr[:, :, 0] = 1           # B = valid
    bgr[~ok] = 0
    success, enc = cv2.imencode(".png", bgr)
    if not success:
        raise _err(p, f"OpenCV could not encode a {w}x{h} 16-bit PNG")
    return enc.tobytes()
