"""flowcli.io.read_image / write_image: one RGB form, atomic writes."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import flowcli.io.image as image_mod
from flowcli.io import IMAGE_EXTENSIONS, read_image, write_image
from tests.support import textured_image


def test_extensions():
    assert {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".bmp", ".tif", ".tiff", ".webp"} <= set(IMAGE_EXTENSIONS)
    assert all(e == e.lower() and e.startswith(".") for e in IMAGE_EXTENSIONS)


def test_png_round_trip_is_rgb(tmp_path):
    img = textured_image(20, 30, seed=1)
    img[0, 0] = (255, 0, 0)  # pure red must stay red: catches a BGR/RGB swap
    write_image(tmp_path / "a.png", img)
    got = read_image(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.shape == (20, 30, 3)
    np.testing.assert_array_equal(got, img)
    # The file itself is a normal PNG that OpenCV reads as BGR.
    assert tuple(cv2.imread(str(tmp_path / "a.png"))[0, 0]) == (0, 0, 255)


@pytest.mark.parametrize("ext", [".bmp", ".ppm", ".tif"])
def test_lossless_formats(tmp_path, ext):
    img = textured_image(9, 11, seed=2)
    write_image(tmp_path / f"a{ext}", img)
    np.testing.assert_array_equal(read_image(tmp_path / f"a{ext}"), img)


def test_jpeg_close(tmp_path):
    img = textured_image(32, 32, seed=3)
    write_image(tmp_path / "a.jpg", img)
    got = read_image(tmp_path / "a.jpg")
    err = np.abs(got.astype(int) - img).mean()
    swapped = np.abs(got[:, :, ::-1].astype(int) - img).mean()
    assert err < 8 and swapped > 2 * err


def test_gray_16bit_and_rgba_inputs(tmp_path):
    gray16 = (np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000)
    cv2.imwrite(str(tmp_path / "g16.png"), gray16)
    got = read_image(tmp_path / "g16.png")
    assert got.shape == (3, 4, 3)
    np.testing.assert_array_equal(got[:, :, 1], np.round(gray16 / 257.0).astype(np.uint8))

    bgra = np.zeros((2, 3, 4), np.uint8)
    bgra[..., 0] = 10   # B
    bgra[..., 1] = 20   # G
    bgra[..., 2] = 30   # R
    bgra[..., 3] = 128  # alpha: dropped, no compositing
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    got = read_image(tmp_path / "rgba.png")
    assert tuple(got[0, 0]) == (30, 20, 10)

    rgb16 = np.zeros((2, 2, 3), np.uint16)
    rgb16[..., 2] = 65535  # R in BGR order
    cv2.imwrite(str(tmp_path / "c16.png"), rgb16)
    assert tuple(read_image(tmp_path / "c16.png")[0, 0]) == (255, 0, 0)

    cv2.imwrite(str(tmp_path / "g8.pgm"), np.full((2, 2), 77, np.uint8))
    assert (read_image(tmp_path / "g8.pgm") == 77).all()


def test_read_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.png"):
        read_image(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="bad.png"):
        read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.png"):
        read_image(empty)


def test_write_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match=r"a\.gifx.*supported"):
        write_image(tmp_path / "a.gifx", textured_image(4, 4))
    assert not any(tmp_path.iterdir())


def test_write_bad_shape(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(4, 4, 2\)"):
        write_image(tmp_path / "a.png", np.zeros((4, 4, 2), np.uint8))
    assert not any(tmp_path.iterdir())


def test_write_leaves_no_temp_file(tmp_path):
    write_image(tmp_path / "a.png", textured_image(8, 8))
    write_image(tmp_path / "a.png", textured_image(8, 8, seed=5))  # overwrite
    assert [p.name for p in tmp_path.iterdir()] == ["a.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), textured_image(8, 8, seed=5))


def test_write_is_atomic_on_failure(tmp_path, monkeypatch):
    def half_then_fail(path, payload):
        with open(path, "wb") as f:
            f.write(payload[: len(payload) // 2])
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(image_mod, "_write_bytes", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / "new.png", textured_image(8, 8))
    assert not any(tmp_path.iterdir())  # no target, no temp file

    monkeypatch.undo()
    old = textured_image(8, 8, seed=9)
    write_image(tmp_path / "old.png", old)
    monkeypatch.setattr(image_mod, "_write_bytes", half_then_fail)
    with pytest.raises(OSError):
        write_image(tmp_path / "old.png", textured_image(8, 8, seed=10))
    assert [p.name for p in tmp_path.iterdir()] == ["old.png"]
    np.testing.assert_array_equal(read_image(tmp_path / "old.png"), old)  # untouched
