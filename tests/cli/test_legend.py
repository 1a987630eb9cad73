"""--legend and panel titles on the bundled example pair (pair, viz), and --legend and --stats on the bundled clip
(video): pictures read back and checked pixel by pixel, statistics against the flow files."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.io import read_flow, read_image
from flowcli.viz import flow_to_color
from flowcli.viz.color import add_legend, flow_scale, legend_image
from tests.support import REPO, one_error_line

EXAMPLES = REPO / "examples"
PAIR = (EXAMPLES / "frame_0001.png", EXAMPLES / "frame_0002.png")
CLIP = EXAMPLES / "clip.mp4"


def test_pair_legend_and_panel_titles(invoke, weights_file, tmp_path):
    out = {k: tmp_path / f"{k}.png" for k in ("viz", "panel")}
    r = invoke("pair", *PAIR, "-o", tmp_path / "f.flo", "--viz", out["viz"], "--panel", out["panel"], "--legend",
               "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    flow, _ = read_flow(tmp_path / "f.flo")
    h, w = flow.shape[:2]
    scale = flow_scale(flow)
    # --viz: the colors, then the wheel with this pair's largest magnitude written under it
    viz = read_image(out["viz"])
    np.testing.assert_array_equal(viz, add_legend(flow_to_color(flow), scale))
    assert viz.shape[1] > w
    # --panel: four tiles, each titled in its top-left corner, then the same legend
    panel = read_image(out["panel"])
    legend = legend_image(scale, h)
    assert panel.shape == (h, 4 * w + legend.shape[1], 3)
    np.testing.assert_array_equal(panel[:, 4 * w:], legend)
    frame1 = read_image(PAIR[0])
    titled = (panel[:, :w] != frame1).any(axis=2)
    assert titled[:12, :40].any() and not titled[40:].any()  # the title box, and nothing else, covers frame 1
    colors = flow_to_color(flow)
    tile2 = (panel[:, w:2 * w] != colors).any(axis=2)
    assert tile2[:12, :40].any() and not tile2[40:].any()


def test_pair_legend_needs_a_picture(invoke, weights_file, tmp_path):
    r = invoke("pair", *PAIR, "-o", tmp_path / "f.flo", "--legend", "--weights", weights_file)
    assert r.exit_code == 2
    assert "--legend needs --viz or --panel" in one_error_line(r)
    assert not (tmp_path / "f.flo").exists()


def test_viz_legend_image_folder_and_video(invoke, tmp_path):
    true = EXAMPLES / "frame_0001_true.flo"
    flow, valid = read_flow(true)
    r = invoke("viz", true, "-o", tmp_path / "one.png", "--legend", "--max-flow", "4")
    assert r.exit_code == 0, r.stderr
    np.testing.assert_array_equal(read_image(tmp_path / "one.png"),
                                  add_legend(flow_to_color(flow, max_flow=4, valid=valid), 4))
    r = invoke("viz", true, EXAMPLES / "clip_flow", "-o", tmp_path / "pics", "--legend")
    assert r.exit_code == 0, r.stderr
    pic = read_image(tmp_path / "pics" / "frame_0001_true.png")
    np.testing.assert_array_equal(pic, add_legend(flow_to_color(flow, valid=valid), flow_scale(flow, valid)))
    r = invoke("viz", EXAMPLES / "clip_flow", "-o", tmp_path / "v.mp4", "--legend", "--max-flow", "6")
    assert r.exit_code == 0, r.stderr
    import imageio.v2 as imageio

    first = sorted((EXAMPLES / "clip_flow").iterdir())[0]
    fh, fw = read_flow(first)[0].shape[:2]
    with imageio.get_reader(str(tmp_path / "v.mp4")) as reader:
        frame = reader.get_data(0)
    assert frame.shape == (fh + fh % 2, fw + legend_image(6, fh).shape[1], 3)


def test_video_stats_equal_the_flow_files_and_legend(invoke, weights_file, tmp_path):
    csv_path, plot = tmp_path / "stats.csv", tmp_path / "stats.png"
    r = invoke("video", CLIP, "--frames", "4", "--flo-dir", tmp_path / "flo", "--viz", tmp_path / "v.mp4",
               "--legend", "--max-flow", "5", "--stats", csv_path, "--stats", plot, "--weights", weights_file)
    assert r.exit_code == 0, r.stderr
    from flowcli.jobs.motion import read_stats_csv

    rows = read_stats_csv(csv_path)
    files = sorted((tmp_path / "flo").glob("*.flo"))
    assert [row["pair"] for row in rows] == [0, 1, 2] and len(files) == 3
    for row, path in zip(rows, files):
        flow, _ = read_flow(path)
        mag = np.hypot(flow[..., 0].astype(np.float64), flow[..., 1].astype(np.float64))
        mu, mv = flow[..., 0].astype(np.float64).mean(), flow[..., 1].astype(np.float64).mean()
        assert row["mean_px"] == pytest.approx(mag.mean(), abs=1e-6)
        assert row["median_px"] == pytest.approx(np.median(mag), abs=1e-6)
        assert row["p95_px"] == pytest.approx(np.percentile(mag, 95), abs=1e-6)
        assert row["mean_u_px"] == pytest.approx(mu, abs=1e-6) and row["mean_v_px"] == pytest.approx(mv, abs=1e-6)
        assert row["direction_deg"] == pytest.approx(np.degrees(np.arctan2(mv, mu)) % 360, abs=1e-5)
        assert row["frame2"] == row["frame1"] + 1 == row["pair"] + 1
    assert rows[1]["time_s"] > rows[0]["time_s"] == 0.0
    assert read_image(plot).shape[:2] == (500, 900)  # matplotlib's 9 x 5 inch figure at 100 dpi
    import imageio.v2 as imageio

    with imageio.get_reader(str(tmp_path / "v.mp4")) as reader:
        frame = reader.get_data(0)
    h, w = read_flow(files[0])[0].shape[:2]
    legend = legend_image(5, h)
    assert frame.shape == (h, w + legend.shape[1], 3)
    # the legend survives encoding: its dark background and the wheel's white center
    assert np.abs(frame[2:10, w + 2:w + 10].astype(int) - legend[2:10, 2:10]).mean() < 12
    center = legend.shape[1] // 2
    assert frame[:, w + center].max() > 235


def test_video_stats_alone_and_bad_options(invoke, weights_file, tmp_path, monkeypatch):
    r = invoke("video", CLIP, "--frames", "3", "--stats", tmp_path / "s.csv", "--weights", weights_file, "--json")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "s.csv").read_text().splitlines()[0].startswith("pair,frame1,frame2,time_s,mean_px")
    r = invoke("video", CLIP, "--flo-dir", tmp_path / "f", "--legend", "--weights", weights_file)
    assert r.exit_code == 2 and "--legend needs --viz" in one_error_line(r)
    r = invoke("video", CLIP, "--stats", tmp_path / "s.txt", "--weights", weights_file)
    assert r.exit_code == 2 and "s.txt" in one_error_line(r)
    import flowcli.jobs.charts as charts

    monkeypatch.setattr(charts, "have_matplotlib", lambda: False)
    r = invoke("video", CLIP, "--stats", tmp_path / "p.png", "--weights", weights_file)
    assert r.exit_code == 2
    line = one_error_line(r)
    assert "p.png" in line and "flowcli[report]" in line
    assert not (tmp_path / "p.png").exists()
