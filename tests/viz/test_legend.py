"""The color wheel legend, titled panel tiles, and the channel-by-channel color coding against the reference formula."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.viz import flow_to_color, make_colorwheel, make_panel
from flowcli.viz.color import (LEGEND_BACKGROUND, MIN_LEGEND_HEIGHT, add_legend, flow_scale, legend_image, px_text,
                               text_size)
from flowcli.viz.panels import label_tiles


def reference_color(flow: np.ndarray, max_flow=None, valid=None) -> np.ndarray:
    """Baker et al.'s computeColor as written in the module's docstring, whole-array and float64 (the slow form)."""
    uv = flow.astype(np.float64)
    known = (np.abs(uv) <= 1e9).all(axis=2)
    if valid is not None:
        known &= valid
    uv[~known] = 0
    scale = max_flow if max_flow is not None else (np.hypot(uv[..., 0], uv[..., 1]).max() or 1.0)
    u, v = uv[..., 0] / scale + 0.0, uv[..., 1] / scale + 0.0
    wheel = make_colorwheel().astype(np.float64)
    rad = np.hypot(u, v)
    fk = (np.arctan2(-v, -u) / np.pi + 1.0) / 2.0 * 54
    k0 = np.floor(fk).astype(int)
    k1 = np.where(k0 + 1 == 55, 0, k0 + 1)
    f = (fk - k0)[..., None]
    col = (1 - f) * wheel[k0] + f * wheel[k1]
    col = np.where((rad <= 1)[..., None], 255 - rad[..., None] * (255 - col), col * 0.75)
    out = np.floor(col).astype(np.uint8)
    out[~known] = 0
    return out


def test_color_coding_equals_the_reference_bit_for_bit(rng):
    for scale in (0.01, 1.0, 40.0):
        flow = rng.normal(size=(37, 53, 2)) * scale
        flow[rng.random((37, 53)) < 0.05] = 0.0
        flow[0, :4] = [(1, 0), (-1, 0), (0, 1), (0, -1)]  # exact wheel entries
        flow[1, 0, 0] = np.nan
        flow[1, 1, 1] = 2e9
        valid = rng.random((37, 53)) > 0.1
        for max_flow in (None, 0.7 * scale):
            np.testing.assert_array_equal(flow_to_color(flow, max_flow, valid), reference_color(flow, max_flow, valid))
            np.testing.assert_array_equal(flow_to_color(flow.astype(np.float32), max_flow),
                                          reference_color(flow.astype(np.float32), max_flow))


def test_flow_scale_is_what_colors_saturate_at():
    flow = np.zeros((4, 5, 2), np.float32)
    flow[1, 2] = (3.0, 4.0)
    flow[0, 0] = (1e10, 0.0)  # unknown: not the maximum
    assert flow_scale(flow) == 5.0
    valid = np.ones((4, 5), bool)
    valid[1, 2] = False
    assert flow_scale(flow, valid) == 1.0  # nothing known moves
    np.testing.assert_array_equal(flow_to_color(flow), flow_to_color(flow, max_flow=flow_scale(flow)))


def test_legend_image_shows_the_wheel_and_its_magnitude():
    leg = legend_image(12.34, 200)
    assert leg.dtype == np.uint8 and leg.shape[0] == 200 and leg.shape[1] % 2 == 0
    assert tuple(leg[0, 0]) == LEGEND_BACKGROUND and tuple(leg[-1, -1]) == LEGEND_BACKGROUND
    # the wheel: find its white center and its rim colors (+u red on the right, +v yellow-orange below)
    white = np.argwhere((leg == 255).all(axis=2) & (np.arange(200)[:, None] < 150))
    cy, cx = np.round(white.mean(axis=0)).astype(int)
    row = leg[cy]
    disk = np.flatnonzero((row != LEGEND_BACKGROUND).any(axis=1))
    right = row[disk.max()]
    assert right[0] > 200 and right[1] < 60 and right[2] < 60
    # the label under the wheel, in white, says "max 12.3 px"
    label_rows = np.flatnonzero((leg[cy:] == 255).all(axis=2).any(axis=1)) + cy
    text_top = label_rows[label_rows > disk.size // 2 + cy][0]
    assert text_top > cy + (disk.max() - disk.min()) // 2
    assert px_text(12.34) == "12.3 px" and px_text(0.5) == "0.50 px" and px_text(148.2) == "148 px"
    # another magnitude writes another label, and the same wheel
    other = legend_image(3.0, 200)
    assert other.shape == leg.shape
    assert not np.array_equal(other[text_top:], leg[text_top:])
    np.testing.assert_array_equal(other[:text_top - 2], leg[:text_top - 2])
    with pytest.raises(ValueError, match="max_flow"):
        legend_image(0.0)


def test_add_legend_keeps_the_picture_and_pads_short_ones():
    img = np.full((120, 90, 3), 200, np.uint8)
    out = add_legend(img, 7.5)
    np.testing.assert_array_equal(out[:, :90], img)
    np.testing.assert_array_equal(out[:, 90:], legend_image(7.5, 120))
    short = add_legend(np.full((20, 30, 3), 200, np.uint8), 7.5)
    assert short.shape[0] == MIN_LEGEND_HEIGHT
    assert (short[:20, :30] == 200).all() and (short[20:, :30] == LEGEND_BACKGROUND).all()


def test_label_tiles_writes_each_title_in_its_tile():
    img = np.full((100, 300, 3), 180, np.uint8)
    out = label_tiles(img, ["frame 1", "", "error"])
    assert out.shape == img.shape and out.dtype == np.uint8
    changed = (out != img).any(axis=2)
    for k in (0, 2):
        tile = changed[:, 100 * k:100 * (k + 1)]
        ys, xs = np.nonzero(tile)
        assert ys.max() < 25 and xs.min() < 10  # a box in the top-left corner only
        box = out[2:ys.max(), 100 * k + 1:100 * k + xs.max()]
        assert (box == 255).all(axis=2).any() and (box < 180).all(axis=2).any()  # white text on a darker box
    assert not changed[:, 100:200].any()  # an empty title leaves its tile alone
    assert not changed[30:].any()
    with pytest.raises(ValueError, match="tiles"):
        label_tiles(img, list("abcdefg"))  # 300 px do not split into 7 tiles


def test_panel_titles_fit_narrow_tiles():
    img1 = np.full((40, 60, 3), 120, np.uint8)
    flow = np.zeros((40, 60, 2), np.float32)
    bare = make_panel(img1, flow, img1, np.zeros((40, 60), np.float32))
    titled = make_panel(img1, flow, img1, np.zeros((40, 60), np.float32),
                        titles=("frame 1", "flow, max 12.3 px", "frame 2 warped to 1", "photometric error"))
    assert titled.shape == bare.shape == (40, 240, 3)
    diff = (titled != bare).any(axis=2)
    assert diff[:, :60].any() and diff[:, 180:].any()
    for k in range(4):  # each title stays inside its own tile
        cols = np.flatnonzero(diff[:, 60 * k:60 * (k + 1)].any(axis=0))
        assert cols.size and cols.max() < 60
    assert text_size("flow, max 12.3 px", 9)[0] > 60 - 8  # it had to be shrunk to fit
