"""Census transform, census cost and candidate fusion on synthetic pairs with exact ground truth."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from flowcli.postprocess import census_cost, census_offsets, census_transform, fuse_candidates
from flowcli.postprocess.fusion import _as_gray, _popcount_lut

PAD = 12  # margin of the source texture, so that every shift below reads real texture


def _texture(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h + 2 PAD) x (w + 2 PAD) x 3 uint8 noise, lightly blurred: detailed but not aliased."""
    noise = rng.integers(0, 256, (h + 2 * PAD, w + 2 * PAD, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 0.8)


def _view(src: np.ndarray, h: int, w: int, u: int, v: int) -> np.ndarray:
    """Frame 2 of src's centre moved by the integer flow (u, v): out[y + v, x + u] = centre[y, x]."""
    return src[PAD - v:PAD - v + h, PAD - u:PAD - u + w]


def _shifted_pair(rng, h=48, w=64, u=3, v=-2):
    src = _texture(rng, h, w)
    return _view(src, h, w, 0, 0), _view(src, h, w, u, v)


def test_offsets():
    assert len(census_offsets(7, 1)) == 48
    assert len(census_offsets(9, 2)) == 24
    assert (0, 0) not in census_offsets(9, 2)
    assert set(census_offsets(9, 2)) >= {(-4, -4), (4, 4), (0, 2), (-2, 0)}
    for bad in ((8, 1), (1, 1), (9, 0), (7.0, 1)):
        with pytest.raises(ValueError, match="window|stride"):
            census_offsets(*bad)


def test_census_bits_by_hand():
    g = np.array([[5, 1, 5],
                  [5, 4, 9],
                  [0, 5, 4]], np.uint8)
    c = census_transform(g, window=3, stride=1)
    assert c.shape == (3, 3) and c.dtype == np.uint8  # 8 neighbours: one byte
    # Centre 4: neighbours in census_offsets order (row by row, centre skipped): 5 1 5 5 9 0 5 4;
    # darker (strictly) than 4: 1 (bit 1) and 0 (bit 5).
    assert int(c[1, 1]) == (1 << 1) | (1 << 5)
    # Corner (0, 0) = 5 with replicated borders: neighbours 5 5 1 / 5 _ 1 / 5 5 4 (the row above
    # repeats row 0) -> darker: bits 2, 4 and 7.
    assert int(c[0, 0]) == (1 << 2) | (1 << 4) | (1 << 7)
    # A float image with the same values gives the same signatures.
    assert np.array_equal(census_transform(g.astype(np.float32), window=3, stride=1), c)


def test_identical_images_zero_cost(rng):
    img, _ = _shifted_pair(rng)
    g = _as_gray(img, "img")
    for window, stride in ((9, 2), (7, 1), (9, 1)):
        c = census_transform(g, window=window, stride=stride)
        cost = census_cost(c, c.copy())
        assert cost.shape == g.shape and cost.dtype == np.uint16
        assert not cost.any()
    # The word is the smallest unsigned type that holds the pattern; past 64 bits, several uint64.
    assert census_transform(g, window=5, stride=1).dtype == np.uint32  # 24 bits
    assert census_transform(g, window=7, stride=1).dtype == np.uint64  # 48 bits
    assert census_transform(g, window=9, stride=1).shape == g.shape + (2,)  # 80 bits: two words


def test_known_shift_zero_cost_at_true_flow(rng):
    h, w, u, v = 48, 64, 3, -2
    img1, img2 = _shifted_pair(rng, h, w, u, v)
    for window, stride in ((9, 2), (9, 1)):
        c1 = census_transform(_as_gray(img1, "img1"), window=window, stride=stride)
        c2 = census_transform(_as_gray(img2, "img2"), window=window, stride=stride)
        nbits = len(census_offsets(window, stride))
        r = window // 2 + 4  # away from replicated borders
        interior = (slice(r, h - r), slice(r, w - r))

        def cost_at(du, dv):  # frame 2's census sampled at x + (du, dv), by slicing
            sampled = np.roll(c2, (-dv, -du), axis=(0, 1))
            return census_cost(c1, sampled)[interior]

        assert not cost_at(u, v).any()
        wrong = cost_at(u + 1, v)
        assert wrong.mean() > 0.2 * nbits  # a one-pixel error is plainly visible
        assert (wrong > 0).mean() > 0.9


def test_popcount_fallback_matches():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 2 ** 63, size=(7, 5), dtype=np.uint64) | (rng.integers(0, 2, (7, 5), dtype=np.uint64) << 63)
    expected = np.array([bin(int(a)).count("1") for a in x.ravel()]).reshape(x.shape)
    assert np.array_equal(_popcount_lut(x), expected)
    assert np.array_equal(_popcount_lut(x.astype(np.uint8)), np.array(
        [bin(int(a)).count("1") for a in x.astype(np.uint8).ravel()]).reshape(x.shape))


def test_census_cost_without_bitwise_count(rng, monkeypatch):
    """numpy < 2.0 has no np.bitwise_count: the lookup-table path must give the same distances."""
    import flowcli.postprocess.fusion as fusion

    img1, img2 = _shifted_pair(rng)
    for window, stride in ((9, 2), (7, 1), (9, 1)):  # uint32, uint64 and two-word signatures
        c1 = census_transform(_as_gray(img1, "img1"), window=window, stride=stride)
        c2 = census_transform(_as_gray(img2, "img2"), window=window, stride=stride)
        fast = census_cost(c1, c2)
        monkeypatch.setattr(fusion, "_HAS_BITWISE_COUNT", False)
        slow = census_cost(c1, c2)
        monkeypatch.undo()
        assert slow.dtype == np.uint16 and np.array_equal(fast, slow) and fast.any()


def test_census_cost_errors():
    a = np.zeros((4, 5), np.uint64)
    with pytest.raises(ValueError, match=r"same shape.*\(4, 5\).*\(4, 6\)"):
        census_cost(a, np.zeros((4, 6), np.uint64))
    with pytest.raises(ValueError, match="unsigned"):
        census_cost(a.astype(np.int64), a.astype(np.int64))
    with pytest.raises(ValueError, match=r"\(H, W\).*got shape \(3, 4, 5\)"):
        census_transform(np.zeros((3, 4, 5), np.uint8))


def _two_region_scene(rng, h=80, w=160):
    """Left half of frame 1 moves by (+5, 0), right half by (-3, +2); built exactly by shifting."""
    src = _texture(rng, h, w)
    img1 = _view(src, h, w, 0, 0)
    left, right = _view(src, h, w, 5, 0), _view(src, h, w, -3, 2)
    img2 = np.where((np.arange(w) < w // 2)[None, :, None], left, right)
    gt = np.zeros((h, w, 2), np.float32)
    gt[:, : w // 2] = (5, 0)
    gt[:, w // 2:] = (-3, 2)
    return img1, img2, gt


def test_fusion_picks_the_right_candidate(rng):
    h, w = 80, 160
    img1, img2, gt = _two_region_scene(rng, h, w)
    a = np.broadcast_to(np.float32([5, 0]), (h, w, 2)).copy()
    b = np.broadcast_to(np.float32([-3, 2]), (h, w, 2)).copy()
    flow, choice = fuse_candidates(img1, img2, [a, b])
    assert flow.shape == (h, w, 2) and flow.dtype == np.float32
    assert choice.shape == (h, w) and choice.dtype == np.uint8
    m = 20  # aggregation box, census window, vote and the motion reach up to ~20 px from the seam
    x = np.arange(w)
    away = (np.abs(x - w // 2) >= m) & (x >= m) & (x < w - m)
    rows = slice(m, h - m)
    correct = np.all(flow == gt, axis=2)[rows][:, away]
    assert correct.mean() >= 0.95
    left, right = away & (x < w // 2), away & (x >= w // 2)
    assert (choice[rows][:, left] == 0).mean() >= 0.95
    assert (choice[rows][:, right] == 1).mean() >= 0.95
    # The fused flow is made of candidate vectors only.
    assert np.all(np.all(flow == a, axis=2) | np.all(flow == b, axis=2))


def test_fusion_order_does_not_decide_clear_cases(rng):
    h, w = 80, 160
    img1, img2, gt = _two_region_scene(rng, h, w)
    a = np.broadcast_to(np.float32([5, 0]), (h, w, 2)).copy()
    b = np.broadcast_to(np.float32([-3, 2]), (h, w, 2)).copy()
    _, choice_ab = fuse_candidates(img1, img2, [a, b])
    _, choice_ba = fuse_candidates(img1, img2, [b, a])
    inner = (slice(20, h - 20), slice(20, w // 2 - 20))
    assert (choice_ab[inner] == 0).all() and (choice_ba[inner] == 1).all()


def test_identical_candidates_tie_to_the_first(rng):
    img1, img2 = _shifted_pair(rng)
    h, w = img1.shape[:2]
    wrong = rng.normal(0, 2, (h, w, 2)).astype(np.float32)  # varied costs, some outside
    flow, choice = fuse_candidates(img1, img2, [wrong, wrong.copy(), wrong.copy()])
    assert not choice.any()
    assert np.array_equal(flow, wrong)


def test_candidate_pointing_outside_loses(rng):
    h, w = 48, 64
    img1, img2 = _shifted_pair(rng, h, w, 5, 0)
    true = np.broadcast_to(np.float32([5, 0]), (h, w, 2)).copy()
    zero = np.zeros((h, w, 2), np.float32)
    flow, choice = fuse_candidates(img1, img2, [true, zero])
    # The true flow leaves frame 2 in the last 5 columns: there the (wrong) zero flow must be taken.
    assert (choice[:, w - 5:] == 1).all()
    assert (choice[10:-10, 10:w - 15] == 0).all()
    # A candidate pointing outside everywhere never wins against one inside, even when listed first.
    far = np.broadcast_to(np.float32([1000, 0]), (h, w, 2)).copy()
    _, choice = fuse_candidates(img1, img2, [far, zero])
    assert (choice == 1).all()
    # NaN counts as outside too.
    nan = np.full((h, w, 2), np.nan, np.float32)
    _, choice = fuse_candidates(img1, img2, [nan, zero])
    assert (choice == 1).all()


def test_all_candidates_outside_keeps_the_first(rng):
    h, w = 48, 64
    img1, img2 = _shifted_pair(rng, h, w)
    far1 = np.broadcast_to(np.float32([1000, 0]), (h, w, 2)).copy()
    far2 = np.broadcast_to(np.float32([0, -1000]), (h, w, 2)).copy()
    flow, choice = fuse_candidates(img1, img2, [far1, far2])
    assert not choice.any()
    assert np.array_equal(flow, far1)


def test_single_candidate_and_no_smoothing(rng):
    img1, img2 = _shifted_pair(rng)
    f = rng.normal(0, 1, img1.shape[:2] + (2,)).astype(np.float32)
    flow, choice = fuse_candidates(img1, img2, [f], aggregate=1, vote=0)
    assert np.array_equal(flow, f) and not choice.any()
    assert flow is not f  # a new array


def test_fusion_errors(rng):
    img1, img2 = _shifted_pair(rng)
    h, w = img1.shape[:2]
    ok = np.zeros((h, w, 2), np.float32)
    with pytest.raises(ValueError, match="empty"):
        fuse_candidates(img1, img2, [])
    with pytest.raises(ValueError, match=r"candidates\[1\] must be \(H, W, 2\), got \(48, 64, 3\)"):
        fuse_candidates(img1, img2, [ok, np.zeros((h, w, 3), np.float32)])
    with pytest.raises(ValueError, match=r"candidates\[0\] is \(48, 63\)"):
        fuse_candidates(img1, img2, [np.zeros((h, w - 1, 2), np.float32)])
    with pytest.raises(ValueError, match="wrap it in a list"):
        fuse_candidates(img1, img2, ok)
    with pytest.raises(ValueError, match="same size"):
        fuse_candidates(img1, img2[:, :-1], [ok])
    with pytest.raises(ValueError, match="aggregate"):
        fuse_candidates(img1, img2, [ok], aggregate=-1)
    with pytest.raises(ValueError, match="window"):
        fuse_candidates(img1, img2, [ok], window=4)


def test_import_stays_free_of_torch_click_rich():
    code = ("import sys, flowcli.postprocess; "
            "bad = [m for m in ('torch', 'click', 'rich', 'flowcli.model', 'flowcli.api') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
