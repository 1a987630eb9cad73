"""Middlebury color coding: the wheel, exact colors for known vectors, normalization, unknown pixels."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.viz import color_wheel_legend, flow_to_color, make_colorwheel

# The wheel by hand (Baker et al. 2011): segment lengths RY 15, YG 6, GC 4, CB 11, BM 13, MR 6 = 55.
# Offsets: RY 0-14, YG 15-20, GC 21-24, CB 25-35, BM 36-48, MR 49-54.


def test_colorwheel_definition():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3) and wheel.dtype == np.uint8
    assert tuple(wheel[0]) == (255, 0, 0)       # RY i=0: red
    assert tuple(wheel[13]) == (255, 221, 0)    # RY i=13: G = floor(255*13/15) = 221
    assert tuple(wheel[14]) == (255, 238, 0)    # RY i=14: G = floor(255*14/15) = 238
    assert tuple(wheel[15]) == (255, 255, 0)    # YG i=0: yellow
    assert tuple(wheel[18]) == (128, 255, 0)    # YG i=3: R = 255 - floor(255*3/6) = 128
    assert tuple(wheel[21]) == (0, 255, 0)      # GC i=0: green
    assert tuple(wheel[25]) == (0, 255, 255)    # CB i=0: cyan
    assert tuple(wheel[27]) == (0, 209, 255)    # CB i=2: G = 255 - floor(255*2/11) = 255 - 46
    assert tuple(wheel[36]) == (0, 0, 255)      # BM i=0: blue
    assert tuple(wheel[40]) == (78, 0, 255)     # BM i=4: R = floor(255*4/13) = 78
    assert tuple(wheel[41]) == (98, 0, 255)     # BM i=5: R = floor(255*5/13) = 98
    assert tuple(wheel[49]) == (255, 0, 255)    # MR i=0: magenta
    assert tuple(wheel[54]) == (255, 0, 43)     # MR i=5: B = 255 - floor(255*5/6) = 43
    # Every entry has one channel at 255 and one at 0 (a fully saturated hue).
    assert ((wheel == 255).any(axis=1) & (wheel == 0).any(axis=1)).all()


def test_zero_flow_is_white():
    out = flow_to_color(np.zeros((3, 4, 2), np.float32))
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    assert (out == 255).all()
    assert (flow_to_color(np.zeros((2, 2, 2)), max_flow=5.0) == 255).all()


# Reference computeColor: a = atan2(-v, -u) / pi, fk = (a + 1) / 2 * 54, blend entries floor(fk) and
# floor(fk)+1 with f = fk - floor(fk); at radius 1 the color is the blended hue itself, floored.
#   (+1, 0): atan2(-0, -1) = -pi -> a = -1   -> fk = 0    -> wheel[0]                 = (255, 0, 0)
#   (-1, 0): atan2(-0, +1) = -0  -> a = 0    -> fk = 27   -> wheel[27]                = (0, 209, 255)
#   (0, +1): atan2(-1, -0) = -pi/2 -> a = -.5 -> fk = 13.5 -> (wheel[13]+wheel[14])/2 = (255, 229.5, 0) -> (255, 229, 0)
#   (0, -1): atan2(+1, -0) = +pi/2 -> a = .5  -> fk = 40.5 -> (wheel[40]+wheel[41])/2 = (88, 0, 255)
UNIT_COLORS = {
    (1.0, 0.0): (255, 0, 0),     # rightwards: red
    (-1.0, 0.0): (0, 209, 255),  # leftwards: cyan-blue
    (0.0, 1.0): (255, 229, 0),   # downwards (+v): yellow-orange
    (0.0, -1.0): (88, 0, 255),   # upwards: violet-blue
}


@pytest.mark.parametrize("uv", sorted(UNIT_COLORS))
def test_unit_vectors_exact(uv):
    flow = np.array([[uv]], np.float32)
    assert tuple(flow_to_color(flow, max_flow=1.0)[0, 0]) == UNIT_COLORS[uv]
    # Frame-max normalization gives the same when the vector is the largest (scaled 3x here).
    flow3 = np.array([[uv, (0.0, 0.0)]], np.float32) * 3
    out = flow_to_color(flow3)
    assert tuple(out[0, 0]) == UNIT_COLORS[uv]
    assert tuple(out[0, 1]) == (255, 255, 255)


def test_negative_zero_does_not_flip_hue():
    flow = np.array([[(1.0, -0.0), (-0.0, 1.0)]], np.float32)
    out = flow_to_color(flow, max_flow=1.0)
    assert tuple(out[0, 0]) == (255, 0, 0)
    assert tuple(out[0, 1]) == (255, 229, 0)


def test_saturation_by_magnitude_and_beyond_max():
    flow = np.array([[(0.5, 0.0), (2.0, 0.0), (-2.0, 0.0)]], np.float32)
    out = flow_to_color(flow, max_flow=1.0)
    # r = 0.5: 255 - 0.5 * (255 - c) per channel: R 255, G and B 127.5 -> 127.
    assert tuple(out[0, 0]) == (255, 127, 127)
    # r > 1: the hue darkened to 75 %: floor(0.75 * 255) = 191, floor(0.75 * 209) = 156.
    assert tuple(out[0, 1]) == (191, 0, 0)
    assert tuple(out[0, 2]) == (0, 156, 191)


def test_fixed_max_flow_is_frame_independent():
    a = np.array([[(1.0, 0.0), (4.0, 0.0)]], np.float32)
    b = np.array([[(1.0, 0.0), (2.0, 0.0)]], np.float32)
    # Frame normalization: the same vector (1, 0) gets different colors in the two frames ...
    assert tuple(flow_to_color(a)[0, 0]) != tuple(flow_to_color(b)[0, 0])
    # ... a fixed max_flow keeps it stable (no flicker in videos).
    assert tuple(flow_to_color(a, max_flow=4)[0, 0]) == tuple(flow_to_color(b, max_flow=4)[0, 0])


def test_unknown_pixels_black():
    flow = np.full((2, 3, 2), 0.5, np.float32)
    flow[0, 0] = (np.nan, 0.0)
    flow[0, 1] = (1e10, 0.0)      # .flo "unknown" marker
    flow[0, 2] = (0.0, np.inf)
    valid = np.ones((2, 3), bool)
    valid[1, 2] = False
    out = flow_to_color(flow, valid=valid)
    black = np.array([[1, 1, 1], [0, 0, 1]], bool)
    assert (out[black] == 0).all()
    assert (out[~black].max(axis=1) > 0).all()
    # Unknown pixels do not take part in the frame's maximum: 1e10 does not wash everything out.
    assert tuple(out[1, 0]) == tuple(flow_to_color(np.array([[(0.5, 0.5)]]), max_flow=np.hypot(0.5, 0.5))[0, 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"flow must be \(H, W, 2\), got \(3, 4\)"):
        flow_to_color(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="max_flow"):
        flow_to_color(np.zeros((3, 4, 2)), max_flow=0)
    with pytest.raises(ValueError, match="valid"):
        flow_to_color(np.zeros((3, 4, 2)), valid=np.ones((4, 3), bool))


def test_legend():
    leg = color_wheel_legend(101)
    assert leg.shape == (101, 101, 3) and leg.dtype == np.uint8
    assert tuple(leg[50, 50]) == (255, 255, 255)  # center: zero flow
    assert tuple(leg[50, 100]) == (255, 0, 0)     # right edge: +u at radius 1
    assert tuple(leg[100, 50]) == (255, 229, 0)   # bottom edge: +v
    assert tuple(leg[50, 0]) == (0, 209, 255)     # left edge: -u
    assert tuple(leg[0, 50]) == (88, 0, 255)      # top edge: -v
    assert tuple(leg[0, 0]) == (0, 0, 0)          # corner, outside the disk
