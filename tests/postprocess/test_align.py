"""Global alignment: the dominant translation of a pair (a camera pan), found, checked and taken out."""
import numpy as np
import pytest

from flowcli.postprocess.align import dominant_translation, global_offset, shift_back
from tests.support import textured_image


def pan(dx: int, dy: int, h=240, w=320, seed=0):
    """(frame 1, frame 2) of a camera pan: frame 2 shows the scene moved by (dx, dy), img2[y + dy, x + dx] = img1[y, x]."""
    scene = textured_image(h + 2 * abs(dy), w + 2 * abs(dx), seed)
    y0, x0 = abs(dy), abs(dx)
    return scene[y0:y0 + h, x0:x0 + w], scene[y0 - dy:y0 - dy + h, x0 - dx:x0 - dx + w]


@pytest.mark.parametrize("dx, dy", [(37, -12), (-90, 25), (130, 0)])
def test_a_pan_is_found_to_the_pixel_and_explains_the_frames(dx, dy):
    img1, img2 = pan(dx, dy)
    fx, fy, gain = dominant_translation(img1, img2)
    assert abs(fx - dx) < 1.0 and abs(fy - dy) < 1.0, (fx, fy)
    assert gain > 0.5
    ox, oy = global_offset(img1, img2)  # whole pixels, within one of the pan: the flow estimate takes the rest
    assert abs(ox - dx) <= 1 and abs(oy - dy) <= 1 and isinstance(ox, int)
    np.testing.assert_array_equal(shift_back(img2, dx, dy)[max(0, -dy):240 - max(0, dy), max(0, -dx):320 - max(0, dx)],
                                  img1[max(0, -dy):240 - max(0, dy), max(0, -dx):320 - max(0, dx)])


def test_short_shifts_and_unrelated_frames_are_left_alone():
    img1, img2 = pan(10, 5)
    assert global_offset(img1, img2) == (0, 0)  # the candidates follow 10 px by themselves
    assert np.abs(np.subtract(global_offset(img1, img2, min_shift=5), (10, 5))).max() <= 1
    a, b = textured_image(240, 320, seed=1), textured_image(240, 320, seed=2)
    fx, fy, gain = dominant_translation(a, b)
    assert gain < 0.25 and global_offset(a, b, min_shift=0) == (0, 0)  # a peak in noise explains nothing


def test_shift_back_takes_whole_pixels_and_repeats_the_border():
    img = np.arange(5 * 6 * 3, dtype=np.uint8).reshape(5, 6, 3)
    out = shift_back(img, 2, -1)
    for y in range(5):
        for x in range(6):
            np.testing.assert_array_equal(out[y, x], img[min(max(y - 1, 0), 4), min(x + 2, 5)])
    assert shift_back(img, 0, 0) is img


def test_a_long_thin_frame_is_not_reduced_to_a_few_rows():
    strip = textured_image(48, 3000, seed=3)
    moved = np.ascontiguousarray(np.roll(strip, (4, 100), axis=(0, 1)))  # img2[y + 4, x + 100] = img1[y, x]
    fx, fy, gain = dominant_translation(strip, moved)
    assert abs(fx - 100) < 1 and abs(fy - 4) < 1 and gain > 0.5, (fx, fy, gain)
