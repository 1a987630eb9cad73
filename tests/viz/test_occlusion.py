"""Forward-backward consistency and the occlusion mask."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.viz import fb_consistency, occlusion_mask

H, W = 30, 40


def constant(u, v):
    f = np.zeros((H, W, 2), np.float32)
    f[..., 0], f[..., 1] = u, v
    return f


@pytest.mark.parametrize("u,v", [(3.0, 2.0), (-2.5, 1.25), (0.0, 0.0)])
def test_exact_inverse_is_consistent(u, v):
    ok = fb_consistency(constant(u, v), constant(-u, -v))
    assert ok.dtype == np.bool_ and ok.shape == (H, W)
    ys, xs = np.mgrid[0:H, 0:W]
    in_frame = (xs + u >= 0) & (xs + u <= W - 1) & (ys + v >= 0) & (ys + v <= H - 1)
    np.testing.assert_array_equal(ok, in_frame)  # consistent everywhere the point stays in frame 2
    np.testing.assert_array_equal(occlusion_mask(constant(u, v), constant(-u, -v)), ~in_frame)


def test_inconsistent_region_detected():
    fwd = constant(3.0, 2.0)
    bwd = constant(-3.0, -2.0)
    bwd[10:20, 20:30] = (5.0, 0.0)  # frame 2 region that does not map back
    ok = fb_consistency(fwd, bwd)
    # Frame-1 pixels landing strictly inside that region: y + 2 in [10, 19], x + 3 in [20, 29].
    assert not ok[8:18, 17:27].any()
    # Pixels landing well away from it (and inside the frame) stay consistent.
    assert ok[0:5, 0:10].all() and ok[20:27, 0:30].all()


def test_thresholds():
    # f = (10, 0), b(x+f) = (-9, 0): |f+b|^2 = 1; alpha (|f|^2 + |b|^2) + beta = 0.01 * 181 + 0.5 = 2.31.
    assert fb_consistency(constant(10.0, 0.0), constant(-9.0, 0.0))[0, 0]
    # b = (-8, 0): |f+b|^2 = 4 > 0.01 * 164 + 0.5 = 2.14.
    assert not fb_consistency(constant(10.0, 0.0), constant(-8.0, 0.0))[0, 0]
    # A larger beta accepts it.
    assert fb_consistency(constant(10.0, 0.0), constant(-8.0, 0.0), beta=3.0)[0, 0]


def test_nan_is_inconsistent():
    fwd = constant(1.0, 0.0)
    bwd = constant(-1.0, 0.0)
    fwd[3, 3] = np.nan
    bwd[10, 11] = np.nan  # reached from (10, 10)
    ok = fb_consistency(fwd, bwd)
    assert not ok[3, 3] and not ok[10, 10]
    assert ok[20, 20]


def test_shape_mismatch():
    with pytest.raises(ValueError, match="backward"):
        fb_consistency(constant(1, 0), np.zeros((H, W + 1, 2)))
