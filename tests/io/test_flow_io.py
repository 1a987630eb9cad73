"""flowcli.io.read_flow / write_flow: round trips, invalid pixels, corrupt files."""
from __future__ import annotations

import struct
import time
import tracemalloc
import warnings
import zipfile

import cv2
import numpy as np
import pytest

from flowcli.io import FLOW_EXTENSIONS, read_flow, write_flow

# A header that claims this size must be refused before anything near its size is allocated.
HUGE = 100_000
SMALL_PEAK = 4 * 1024 * 1024  # bytes: far below the 80 GB such a header would ask for


def random_flow(rng: np.random.Generator, h: int = 23, w: int = 31, scale: float = 40.0) -> np.ndarray:
    return (rng.standard_normal((h, w, 2)) * scale).astype(np.float32)


def raises_quickly_and_small(path, match: str) -> ValueError:
    """read_flow(path) must raise a one-line ValueError naming the file, fast and without big allocations."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ValueError, match=match) as info:
            read_flow(path)
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    msg = str(info.value)
    assert str(path) in msg
    assert "\n" not in msg
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    assert peak < SMALL_PEAK, f"peak allocation {peak} bytes"
    return info.value


# ------------------------------------------------------------------------------------- round trips


def test_extensions_listed():
    assert FLOW_EXTENSIONS == (".flo", ".png", ".pfm", ".npy", ".npz")


@pytest.mark.parametrize("ext", [".flo", ".npy", ".npz", ".pfm"])
def test_round_trip_exact(tmp_path, rng, ext):
    flow = random_flow(rng)
    path = tmp_path / f"f{ext}"
    write_flow(path, flow)
    got, valid = read_flow(path)
    assert got.dtype == np.float32 and got.shape == flow.shape
    assert valid.dtype == np.bool_ and valid.shape == flow.shape[:2]
    assert valid.all()
    np.testing.assert_array_equal(got, flow)


@pytest.mark.parametrize("ext", [".flo", ".npy", ".npz", ".pfm", ".png"])
def test_valid_mask_preserved(tmp_path, rng, ext):
    flow = random_flow(rng, scale=10.0)
    valid = rng.random(flow.shape[:2]) > 0.3
    path = tmp_path / f"f{ext}"
    write_flow(path, flow, valid)
    got, got_valid = read_flow(path)
    np.testing.assert_array_equal(got_valid, valid)
    # Unknown pixels come back as 0 so that arithmetic stays finite.
    assert (got[~valid] == 0).all()
    tol = 1 / 128 if ext == ".png" else 0.0
    np.testing.assert_allclose(got[valid], flow[valid], rtol=0, atol=tol)


@pytest.mark.parametrize("ext", [".flo", ".npy", ".npz", ".pfm", ".png"])
def test_nan_means_invalid(tmp_path, rng, ext):
    flow = random_flow(rng, scale=5.0)
    flow[3, 4, 0] = np.nan
    flow[7, 1, 1] = np.nan
    path = tmp_path / f"f{ext}"
    write_flow(path, flow)
    got, valid = read_flow(path)
    assert valid.sum() == flow.shape[0] * flow.shape[1] - 2
    assert not valid[3, 4] and not valid[7, 1]
    assert np.isfinite(got).all()


def test_kitti_png_within_one_64th(tmp_path, rng):
    flow = random_flow(rng, h=40, w=50, scale=100.0)
    path = tmp_path / "k.png"
    write_flow(path, flow)
    got, valid = read_flow(path)
    assert valid.all()
    assert np.abs(got - flow).max() <= 1 / 64
    # The file is what KITTI's devkit expects: 16-bit, R = u * 64 + 2^15, B = valid.
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw.shape == (40, 50, 3)
    assert raw[0, 0, 2] == round(float(flow[0, 0, 0]) * 64) + 2**15
    assert raw[0, 0, 1] == round(float(flow[0, 0, 1]) * 64) + 2**15
    assert (raw[:, :, 0] == 1).all()


def test_kitti_png_clamps_and_says_how_many(tmp_path):
    flow = np.zeros((4, 5, 2), np.float32)
    flow[0, 0, 0] = 600.0
    flow[1, 1, 1] = -1000.0
    flow[2, 2, 0] = 511.9  # representable: 32761.6 -> 32762 <= 32767
    with pytest.warns(UserWarning, match=r"\b2 flow value"):
        write_flow(tmp_path / "k.png", flow)
    got, valid = read_flow(tmp_path / "k.png")
    assert valid.all()
    assert got[0, 0, 0] == pytest.approx((2**15 - 1) / 64)
    assert got[1, 1, 1] == pytest.approx(-(2**15 - 1) / 64)
    assert abs(got[2, 2, 0] - 511.9) <= 1 / 64


def test_kitti_png_no_warning_in_range(tmp_path, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_flow(tmp_path / "k.png", random_flow(rng, scale=50.0))


def write_pfm_by_hand(path, flow: np.ndarray, big_endian: bool, third=0.0) -> None:
    """Independent PFM writer, FlyingThings3D style: 3 channels, rows bottom-up."""
    h, w = flow.shape[:2]
    data = np.concatenate([flow, np.full((h, w, 1), third, np.float32)], axis=2)[::-1]
    order = ">" if big_endian else "<"
    scale = "1.0" if big_endian else "-1.0"
    path.write_bytes(f"PF\n{w} {h}\n{scale}\n".encode() + data.astype(order + "f4").tobytes())


@pytest.mark.parametrize("big_endian", [False, True])
def test_pfm_both_endiannesses_exact(tmp_path, rng, big_endian):
    flow = random_flow(rng, h=9, w=14)
    path = tmp_path / "f.pfm"
    write_pfm_by_hand(path, flow, big_endian, third=7.0)
    got, valid = read_flow(path)
    assert valid.all()
    np.testing.assert_array_equal(got, flow)  # also checks the bottom-up row order


def test_pfm_written_file_is_little_endian_bottom_up(tmp_path, rng):
    flow = random_flow(rng, h=3, w=4)
    path = tmp_path / "f.pfm"
    write_flow(path, flow)
    raw = path.read_bytes()
    header = b"PF\n4 3\n-1.0\n"
    assert raw.startswith(header)
    data = np.frombuffer(raw[len(header):], "<f4").reshape(3, 4, 3)
    np.testing.assert_array_equal(data[::-1, :, :2], flow)
    assert (data[:, :, 2] == 0).all()


def test_flo_layout_and_unknown_value(tmp_path):
    flow = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    valid = np.ones((2, 3), bool)
    valid[1, 2] = False
    path = tmp_path / "f.flo"
    write_flow(path, flow, valid)
    raw = path.read_bytes()
    assert struct.unpack("<fii", raw[:12]) == (202021.25, 3, 2)
    data = np.frombuffer(raw[12:], "<f4").reshape(2, 3, 2)
    np.testing.assert_array_equal(data[0], flow[0])
    assert (data[1, 2] == 1e10).all()


def test_flo_reads_unknown_above_1e9(tmp_path):
    data = np.zeros((2, 2, 2), "<f4")
    data[0, 1, 0] = 1.5e9   # u unknown
    data[1, 0, 1] = -2e9    # v unknown
    data[1, 1, 0] = 1e9     # exactly the threshold: still known
    path = tmp_path / "u.flo"
    path.write_bytes(struct.pack("<fii", 202021.25, 2, 2) + data.tobytes())
    flow, valid = read_flow(path)
    np.testing.assert_array_equal(valid, [[True, False], [False, True]])
    assert flow[0, 1, 0] == 0 and flow[1, 0, 1] == 0


def test_npz_layout(tmp_path, rng):
    flow = random_flow(rng)
    valid = rng.random(flow.shape[:2]) > 0.5
    path = tmp_path / "f.npz"
    write_flow(path, flow, valid)
    with np.load(path) as z:
        assert set(z.files) == {"flow", "valid"}
        np.testing.assert_array_equal(z["valid"], valid)
        assert np.isnan(z["flow"][~valid]).all()


def test_npz_without_valid_and_float64_npy(tmp_path, rng):
    flow = rng.standard_normal((5, 6, 2))  # float64
    np.savez(tmp_path / "a.npz", flow=flow)
    got, valid = read_flow(tmp_path / "a.npz")
    assert valid.all() and got.dtype == np.float32
    np.testing.assert_array_equal(got, flow.astype(np.float32))
    np.save(tmp_path / "b.npy", np.asfortranarray(flow))
    got, _ = read_flow(tmp_path / "b.npy")
    np.testing.assert_array_equal(got, flow.astype(np.float32))


def test_uppercase_extension(tmp_path, rng):
    flow = random_flow(rng)
    write_flow(tmp_path / "F.FLO", flow)
    np.testing.assert_array_equal(read_flow(tmp_path / "F.FLO")[0], flow)


def test_write_is_atomic_leaves_no_temp(tmp_path, rng):
    for ext in FLOW_EXTENSIONS:
        write_flow(tmp_path / f"f{ext}", random_flow(rng, scale=3.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"f{e}" for e in FLOW_EXTENSIONS)


def test_write_does_not_modify_input(tmp_path, rng):
    flow = random_flow(rng)
    flow[0, 0] = np.nan
    before = flow.copy()
    write_flow(tmp_path / "f.flo", flow, np.ones(flow.shape[:2], bool))
    np.testing.assert_array_equal(flow, before)


# -------------------------------------------------------------------------------- bad arguments


def test_write_unknown_extension(tmp_path, rng):
    with pytest.raises(ValueError, match=r"f\.txt.*\.flo, \.png, \.pfm, \.npy, \.npz"):
        write_flow(tmp_path / "f.txt", random_flow(rng))
    assert not any(tmp_path.iterdir())


def test_read_unknown_extension(tmp_path):
    (tmp_path / "f.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"f\.jpg.*supported"):
        read_flow(tmp_path / "f.jpg")


@pytest.mark.parametrize("shape", [(4, 5), (4, 5, 3), (2, 4, 5), (4, 5, 2, 1)])
def test_write_bad_shape(tmp_path, shape):
    with pytest.raises(ValueError, match=r"flow must be \(H, W, 2\), got " + repr(shape).replace("(", r"\(").replace(")", r"\)")):
        write_flow(tmp_path / "f.flo", np.zeros(shape, np.float32))
    assert not (tmp_path / "f.flo").exists()


def test_write_bad_valid_shape(tmp_path):
    with pytest.raises(ValueError, match="valid must be"):
        write_flow(tmp_path / "f.flo", np.zeros((4, 5, 2), np.float32), np.ones((5, 4), bool))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.flo"):
        read_flow(tmp_path / "nope.flo")


# ------------------------------------------------------------------------------------ corrupt files


def flo_bytes(w: int, h: int, n_floats: int, magic: float = 202021.25) -> bytes:
    return struct.pack("<fii", magic, w, h) + np.zeros(n_floats, "<f4").tobytes()


def test_flo_truncated(tmp_path):
    path = tmp_path / "t.flo"
    path.write_bytes(flo_bytes(4, 3, 4 * 3 * 2 - 1))
    err = raises_quickly_and_small(path, "header says 4x3")
    assert "92 bytes of data" in str(err)


def test_flo_truncated_header(tmp_path):
    path = tmp_path / "t.flo"
    path.write_bytes(b"\x00\x00")
    raises_quickly_and_small(path, "truncated")


def test_flo_wrong_magic(tmp_path):
    path = tmp_path / "m.flo"
    path.write_bytes(flo_bytes(4, 3, 24, magic=1.0))
    raises_quickly_and_small(path, r"bad magic 1\.0 \(expected 202021\.25\)")


def test_flo_lying_header(tmp_path):
    path = tmp_path / "lie.flo"
    path.write_bytes(flo_bytes(HUGE, HUGE, 3))
    raises_quickly_and_small(path, r"header says 100000x100000 .* 12 bytes of data")


def test_flo_negative_size(tmp_path):
    path = tmp_path / "neg.flo"
    path.write_bytes(flo_bytes(-4, 3, 24))
    raises_quickly_and_small(path, "bad size")


def test_pfm_lying_header(tmp_path):
    path = tmp_path / "lie.pfm"
    path.write_bytes(f"PF\n{HUGE} {HUGE}\n-1.0\n".encode() + b"\0" * 36)
    raises_quickly_and_small(path, "header says 100000x100000x3")


def test_pfm_truncated(tmp_path, rng):
    path = tmp_path / "t.pfm"
    write_pfm_by_hand(path, random_flow(rng, h=5, w=6), big_endian=False)
    path.write_bytes(path.read_bytes()[:-5])
    raises_quickly_and_small(path, "header says 6x5x3")


def test_pfm_wrong_magic_and_gray(tmp_path):
    path = tmp_path / "m.pfm"
    path.write_bytes(b"P6\n2 2\n255\n" + b"\0" * 12)
    raises_quickly_and_small(path, "bad magic")
    path.write_bytes(b"\x00" * 5000)  # binary garbage without a newline
    raises_quickly_and_small(path, "bad magic")
    path.write_bytes(b"Pf\n2 2\n-1.0\n" + b"\0" * 16)
    raises_quickly_and_small(path, "1-channel")


def test_npy_wrong_dtype(tmp_path):
    path = tmp_path / "i.npy"
    np.save(path, np.zeros((4, 5, 2), np.int32))
    raises_quickly_and_small(path, r"dtype int32, expected floating point")
    np.save(path, np.array([[["a", "b"]]], dtype=object), allow_pickle=True)
    raises_quickly_and_small(path, "dtype object")


def test_npy_wrong_shape(tmp_path):
    path = tmp_path / "s.npy"
    np.save(path, np.zeros((2, 4, 5), np.float32))
    raises_quickly_and_small(path, r"shape \(2, 4, 5\), expected \(H, W, 2\)")


def npy_header(shape, descr="<f4") -> bytes:
    d = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d


def test_npy_lying_header(tmp_path):
    path = tmp_path / "lie.npy"
    path.write_bytes(npy_header((HUGE, HUGE, 2)) + b"\0" * 16)
    raises_quickly_and_small(path, r"shape \(100000, 100000, 2\)")


def test_npy_truncated_and_wrong_magic(tmp_path):
    path = tmp_path / "t.npy"
    path.write_bytes(npy_header((3, 4, 2)) + b"\0" * 50)
    raises_quickly_and_small(path, "96 bytes of data")
    path.write_bytes(b"NOTNUMPY" + b"\0" * 100)
    raises_quickly_and_small(path, "bad .npy header")


def test_npz_lying_member_and_bad_archive(tmp_path):
    path = tmp_path / "lie.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("flow.npy", npy_header((HUGE, HUGE, 2)) + b"\0" * 16)
    raises_quickly_and_small(path, "100000")
    path.write_bytes(b"PK\x03\x04 truncated")
    raises_quickly_and_small(path, "not a valid .npz")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("other.npy", npy_header((1, 1, 2)) + b"\0" * 8)
    raises_quickly_and_small(path, "no 'flow' array")


def test_npz_valid_shape_mismatch(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, flow=np.zeros((3, 4, 2), np.float32), valid=np.ones((4, 3), bool))
    raises_quickly_and_small(path, "member 'valid' has shape")


def test_kitti_png_wrong_kind(tmp_path):
    path = tmp_path / "k.png"
    cv2.imwrite(str(path), np.zeros((4, 5, 3), np.uint8))
    raises_quickly_and_small(path, "expected a 16-bit RGB KITTI flow PNG, got 8-bit RGB")
    path.write_bytes(b"GIF89a" + b"\0" * 40)
    raises_quickly_and_small(path, "not a PNG")


def test_kitti_png_truncated(tmp_path, rng):
    path = tmp_path / "k.png"
    write_flow(path, random_flow(rng, h=60, w=80))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    raises_quickly_and_small(path, "cannot decode")


def test_kitti_png_lying_header(tmp_path, rng):
    path = tmp_path / "k.png"
    write_flow(path, random_flow(rng, h=6, w=8))
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", HUGE, HUGE)  # IHDR width, height
    path.write_bytes(bytes(data))
    raises_quickly_and_small(path, "header says 100000x100000")
