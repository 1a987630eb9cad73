"""The learned selection: its features on pairs with exact ground truth, the scorer's checks, and the pick."""
from __future__ import annotations

import numpy as np
import pytest

from flowcli.postprocess.selection import FEATURES, KINDS, Selector, select_candidates, selection_features
from tests.support import textured_image

N_FEATURES = len(FEATURES) + len(KINDS)


def moving_square(h=96, w=128, shift=24, seed=5):
    """A textured background at rest and a textured square (rows/cols 32..63) moving ``shift`` px to the right, with
    the true flow (frame 2 shows the square at x + shift)."""
    bg, fg = textured_image(h, w, seed), textured_image(h, w, seed + 1)
    img1, img2 = bg.copy(), bg.copy()
    img1[32:64, 32:64] = fg[32:64, 32:64]
    img2[32:64, 32 + shift:64 + shift] = fg[32:64, 32:64]
    true = np.zeros((h, w, 2), np.float32)
    true[32:64, 32:64, 0] = shift
    return img1, img2, true


def census_only(smooth=1) -> Selector:
    """A hand-set scorer: minus the 5x5 census cost (feature census_5), nothing learned."""
    w1 = np.zeros((N_FEATURES, 1), np.float32)
    w1[FEATURES.index("census_5"), 0] = -1.0
    return Selector(w1=w1, b1=np.array([10.0], np.float32), w2=np.array([1.0], np.float32), b2=0.0,
                    mean=np.zeros(N_FEATURES, np.float32), std=np.ones(N_FEATURES, np.float32), smooth=smooth)


def test_features_tell_the_true_flow_from_a_wrong_one():
    img1, img2, true = moving_square()
    wrong = np.zeros_like(true)  # right on the background, 24 px off on the square
    f = selection_features(img1, img2, [true, wrong], ["net-coarse", "net"])
    assert f.shape == (2, N_FEATURES, 96, 128) and f.dtype == np.float32
    square = (slice(36, 60), slice(36, 60))
    c5 = FEATURES.index("census_5")
    assert f[0, c5][square].mean() < 0.05 < 0.2 < f[1, c5][square].mean()
    assert np.allclose(f[0, c5][70:, 70:], f[1, c5][70:, 70:])  # where both are right, both cost the same
    agree = FEATURES.index("agree_min")
    assert np.allclose(f[0, agree][square], np.log1p(24.0)) and np.allclose(f[0, agree][80:, :20], 0.0)
    assert f[0, len(FEATURES) + KINDS.index("net-coarse")].all() and f[1, len(FEATURES) + KINDS.index("net")].all()
    outside = np.zeros_like(true)
    outside[..., 0] = 500.0  # every target outside frame 2
    g = selection_features(img1, img2, [outside], ["dis"])
    assert np.allclose(g[0, FEATURES.index("census_1")], 1.0) and np.allclose(g[0, FEATURES.index("outside_5")], 1.0)


def test_a_scorer_picks_per_region_and_ties_keep_the_first():
    img1, img2, true = moving_square()
    wrong = np.zeros_like(true)
    flow, choice = select_candidates(img1, img2, [wrong, true], ["net", "net-coarse"], census_only(smooth=5))
    square = (slice(36, 60), slice(36, 60))
    assert (choice[square] == 1).all() and np.allclose(flow[square], true[square])
    assert (choice[80:, 80:] == 0).all()  # the background: both right, equal scores, the first kept
    single, idx = select_candidates(img1, img2, [true], ["net"], census_only())
    assert np.array_equal(single, true) and not idx.any()


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(w1=[[1.0]]), "wrong shapes"),
    (lambda d: d.update(b2=float("nan")), "finite"),
    (lambda d: d.update(std=[0.0] * N_FEATURES), "std > 0"),
    (lambda d: d.update(smooth=0), "smooth must be an integer"),
    (lambda d: d.update(smooth=True), "smooth must be an integer"),
    (lambda d: d.update(w2="abc"), "lists of numbers"),
    (lambda d: d.pop("mean"), "lacks 'mean'"),
    (lambda d: d.update(extra=1), "unknown selection setting"),
    (lambda d: d.update(w1=np.zeros((N_FEATURES, 300)).tolist(), b1=[0.0] * 300, w2=[0.0] * 300), "at most 256"),
])
def test_selector_data_is_checked(change, match):
    d = census_only().to_dict()
    change(d)
    with pytest.raises(ValueError, match=match):
        Selector.from_dict(d)


def test_selector_round_trips_through_plain_values():
    s = census_only(smooth=7)
    back = Selector.from_dict(s.to_dict())
    assert back.smooth == 7 and np.array_equal(back.w1, s.w1) and back.b2 == s.b2


def test_scores_are_the_scorer_applied_to_standardised_features():
    """The fast path (standardisation folded into the first layer) equals the textbook formula, then the box."""
    import cv2

    rng = np.random.default_rng(3)
    hidden = 5
    s = Selector(w1=rng.normal(size=(N_FEATURES, hidden)).astype(np.float32),
                 b1=rng.normal(size=hidden).astype(np.float32),
                 w2=rng.normal(size=hidden).astype(np.float32), b2=0.3,
                 mean=rng.normal(size=N_FEATURES).astype(np.float32),
                 std=rng.uniform(0.5, 2, N_FEATURES).astype(np.float32), smooth=3)
    f = rng.normal(size=(2, N_FEATURES, 12, 16)).astype(np.float32)
    x = (f.transpose(0, 2, 3, 1) - s.mean) / s.std
    raw = np.maximum(x @ s.w1 + s.b1, 0) @ s.w2 + s.b2
    expected = np.stack([cv2.blur(r.astype(np.float32), (3, 3), borderType=cv2.BORDER_REFLECT_101) for r in raw])
    np.testing.assert_allclose(s.scores(f), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_agreement_features_use_the_median_of_the_candidates(k):
    img1, img2, _ = moving_square()
    rng = np.random.default_rng(k)
    cands = [rng.normal(size=(96, 128, 2)).astype(np.float32) for _ in range(k)]
    f = selection_features(img1, img2, cands, ["net"] * k)
    median = np.median(np.stack(cands), axis=0)
    for i in range(k):
        np.testing.assert_allclose(f[i, FEATURES.index("agree_median")],
                                   np.log1p(np.hypot(*(cands[i] - median).transpose(2, 0, 1))), atol=1e-5)
