"""flowcli viz and flowcli convert: existing flow files in, pictures / other formats out."""
from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from flowcli.io import read_flow, read_image, write_flow
from tests.support import H, W, files_in, one_error_line


def flows_dir(folder, n=3, ext=".flo"):
    folder.mkdir(parents=True, exist_ok=True)
    g = np.random.default_rng(0)
    for i in range(n):
        write_flow(folder / f"flow{i + 1}{ext}", g.normal(0, 3, (H, W, 2)).astype(np.float32))
    return folder


@pytest.mark.parametrize("ext", [".flo", ".png", ".pfm", ".npy", ".npz"])
def test_viz_one_file_any_format(invoke, tmp_path, ext):
    src = flows_dir(tmp_path / "in", n=1, ext=ext) / f"flow1{ext}"
    out = tmp_path / "color.png"
    r = invoke("viz", src, "-o", out, "--max-flow", "5")
    assert r.exit_code == 0, r.stderr
    assert read_image(out).shape == (H, W, 3)


def test_viz_many_files_to_folder(invoke, tmp_path):
    src = flows_dir(tmp_path / "in", n=3)
    out = tmp_path / "pics"
    r = invoke("viz", src / "flow1.flo", src / "flow2.flo", src / "flow3.flo", "-o", out)
    assert r.exit_code == 0, r.stderr
    assert files_in(out) == ["flow1.png", "flow2.png", "flow3.png"]


def test_viz_folder_to_video(invoke, tmp_path):
    src = flows_dir(tmp_path / "in", n=11)
    out = tmp_path / "flows.mp4"
    r = invoke("viz", src, "-o", out, "--fps", "5")
    assert r.exit_code == 0, r.stderr
    reader = imageio.get_reader(str(out))
    assert reader.count_frames() == 11 and reader.get_meta_data()["fps"] == 5.0
    reader.close()


def test_viz_unknown_input_extension(invoke, tmp_path):
    bad = tmp_path / "flow.txt"
    bad.write_text("1 2 3")
    r = invoke("viz", bad, "-o", tmp_path / "o.png")
    assert r.exit_code == 2
    assert "flow.txt" in one_error_line(r)


def test_viz_corrupt_flow_no_partial_video(invoke, tmp_path):
    src = flows_dir(tmp_path / "in", n=3)
    (src / "flow2.flo").write_bytes(b"PIEH\x10\x00")
    out = tmp_path / "out"
    out.mkdir()
    r = invoke("viz", src, "-o", out / "v.mp4", "--max-flow", "3")
    assert r.exit_code == 1
    assert "flow2.flo" in one_error_line(r)
    assert files_in(out) == []


def test_viz_several_files_one_image_is_a_usage_error(invoke, tmp_path):
    src = flows_dir(tmp_path / "in", n=2)
    r = invoke("viz", src / "flow1.flo", src / "flow2.flo", "-o", tmp_path / "o.png")
    assert r.exit_code == 2
    one_error_line(r)


@pytest.mark.parametrize("dst_ext", [".png", ".npy", ".npz", ".pfm", ".flo"])
def test_convert_round_trip(invoke, tmp_path, dst_ext):
    src = flows_dir(tmp_path / "in", n=1) / "flow1.flo"
    dst = tmp_path / f"out{dst_ext}"
    r = invoke("convert", src, dst)
    assert r.exit_code == 0, r.stderr
    a, _ = read_flow(src)
    b, valid = read_flow(dst)
    assert valid.all()
    np.testing.assert_allclose(a, b, atol=1 / 64 if dst_ext == ".png" else 1e-6)


def test_convert_keeps_invalid_pixels(invoke, tmp_path):
    flow = np.ones((H, W, 2), np.float32)
    valid = np.ones((H, W), bool)
    valid[:5] = False
    write_flow(tmp_path / "a.png", flow, valid)
    assert invoke("convert", tmp_path / "a.png", tmp_path / "b.npz").exit_code == 0
    assert (read_flow(tmp_path / "b.npz")[1] == valid).all()


def test_convert_errors(invoke, tmp_path):
    src = flows_dir(tmp_path / "in", n=1) / "flow1.flo"
    r = invoke("convert", src, tmp_path / "out.jpg")
    assert r.exit_code == 2 and "out.jpg" in one_error_line(r)
    r = invoke("convert", tmp_path / "missing.flo", tmp_path / "out.npy")
    assert r.exit_code == 2 and "missing.flo" in one_error_line(r)
    (tmp_path / "empty.flo").write_bytes(b"")
    r = invoke("convert", tmp_path / "empty.flo", tmp_path / "out.npy")
    assert r.exit_code == 1 and "empty.flo" in one_error_line(r)
    assert not (tmp_path / "out.npy").exists()
