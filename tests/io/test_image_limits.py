"""read_image refuses an image over the pixel limit from its header, before anything is decoded, and turns every
decoder complaint into one ValueError naming the file (nothing of libpng's or OpenCV's own on stderr)."""
from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from flowcli.io import image as image_io
from flowcli.io.image import DEFAULT_MAX_PIXELS, image_size, max_pixels, read_image

H, W = 37, 53
IMG = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
FORMATS = {  # what OpenCV writes, each with its header layout
    "png": (".png", IMG, []), "png16": (".png", IMG.astype(np.uint16) * 257, []), "jpeg": (".jpg", IMG, []),
    "ppm": (".ppm", IMG, []), "pgm": (".pgm", IMG[..., 0], []), "pfm": (".pfm", IMG.astype(np.float32) / 255, []),
    "pam": (".pam", IMG, []), "bmp": (".bmp", IMG, []), "tiff": (".tif", IMG, []),
    "webp": (".webp", IMG, [cv2.IMWRITE_WEBP_QUALITY, 80]), "webp-lossless": (".webp", IMG, [cv2.IMWRITE_WEBP_QUALITY, 101]),
}


def encoded(kind: str) -> bytes:
    ext, img, params = FORMATS[kind]
    ok, buf = cv2.imencode(ext, img, params)
    assert ok
    return buf.tobytes()


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything reaches the decoder."""
    def refuse(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse)


@pytest.mark.parametrize("kind", list(FORMATS))
def test_header_size_of_every_format(kind, tmp_path, monkeypatch, no_decoding):
    data = encoded(kind)
    assert image_size(data) == (W, H)
    path = tmp_path / f"img{FORMATS[kind][0]}"
    path.write_bytes(data)
    monkeypatch.setenv("FLOWCLI_MAX_PIXELS", "1000")
    with pytest.raises(ValueError, match=rf"{W}x{H} \(1,961 pixels\), over the limit of 1,000 pixels"):
        read_image(path)


def forged_jpeg(width: int, height: int) -> bytes:
    data = bytearray(encoded("jpeg"))
    sof = next(i for i in range(2, len(data) - 1) if data[i] == 0xFF and data[i + 1] in (0xC0, 0xC1, 0xC2))
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize("name, data", [
    ("big.ppm", b"P6\n# a comment\n100000 100000\n255\n" + b"\0" * 64),
    ("big.jpg", forged_jpeg(60000, 60000)),
    ("big.bmp", encoded("bmp")[:18] + struct.pack("<ii", 100000, -100000) + encoded("bmp")[26:]),
])
def test_forged_headers_refused_before_decoding(name, data, tmp_path, no_decoding, capfd):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ValueError) as info:
        read_image(path)
    text = str(info.value)
    assert text.startswith(f"{path}: image is ") and "over the limit of 268,435,456 pixels" in text
    assert "\n" not in text and capfd.readouterr().err == ""


def chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_png_cut_short_or_lying_is_one_line_and_silent(tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("FLOWCLI_MAX_PIXELS", "2**30")
    data = encoded("png")
    cases = {"cut.png": data[: len(data) // 2], "noend.png": data[:-12],
             "crc.png": data[:40] + bytes([data[40] ^ 0xFF]) + data[41:],
             # a 20000x20000 header over a few bytes of image data: under a raised limit, still refused unallocated
             "liar.png": data[:8] + chunk(b"IHDR", struct.pack(">II", 20000, 20000) + data[24:29]) + data[33:]}
    for name, payload in cases.items():
        path = tmp_path / name
        path.write_bytes(payload)
        with pytest.raises(ValueError, match=f"^{path}: ") as info:
            read_image(path)
        assert "\n" not in str(info.value)
        if name == "liar.png":
            assert "more than PNG compression can explain" in str(info.value)
    assert capfd.readouterr().err == ""  # libpng printed nothing of its own


def test_limit_setting(monkeypatch, tmp_path):
    assert max_pixels() == DEFAULT_MAX_PIXELS == 2 ** 28
    for text, value in (("5000", 5000), ("1e9", 10 ** 9), ("2**30", 2 ** 30), ("1_000", 1000)):
        monkeypatch.setenv("FLOWCLI_MAX_PIXELS", text)
        assert max_pixels() == value
    monkeypatch.setenv("FLOWCLI_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="FLOWCLI_MAX_PIXELS='lots'"):
        max_pixels()
    monkeypatch.delenv("FLOWCLI_MAX_PIXELS")
    (tmp_path / "ok.png").write_bytes(encoded("png"))
    assert read_image(tmp_path / "ok.png").shape == (H, W, 3)  # a normal image still reads


def test_opencv_errors_are_one_line(tmp_path):
    # a format the header reader does not know (Radiance HDR) declaring more pixels than OpenCV allows
    path = tmp_path / "big.hdr"
    path.write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 100000 +X 100000\n" + b"\0" * 64)
    with pytest.raises(ValueError, match=f"^{path}: over OpenCV's own size limit"):
        read_image(path)
    assert image_io.png_problem(encoded("png")) is None
