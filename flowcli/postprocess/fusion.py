"""Per-pixel fusion of candidate flows by a census matching cost.

The census transform (Zabih & Woodfill, ECCV 1994) describes each pixel by which of its neighbours
are darker than it. Two signatures are compared by their Hamming distance; the cost depends only on
the order of intensities, so it is unaffected by brightness and contrast changes between the frames
(Sintel "final" haze, KITTI exposure changes), which a plain intensity difference is not.

:func:`fuse_candidates` scores each candidate flow by the census cost between frame 1 and frame 2
sampled along that candidate, sums the cost over a box window so that the choice is made per region
rather than per noisy pixel, and keeps per pixel the candidate with the lowest cost.

Measured on the real pairs of ``../shared/data/real`` with OpenCV DIS (full and half size) and
Farneback flows as candidates (the DIS part: ``benchmarks/bench_postprocess.py --variants``), which
shaped the defaults:

* a sparse 9x9 pattern with stride 2 (24 neighbours) scored at least as well as the
  full 7x7 (48) and 9x9 (80) patterns, and is the cheapest (one 32-bit word per pixel);
* warping frame 2 bilinearly along the candidate, then taking the census of the warped image,
  beat looking up frame 2's census at the rounded target: rounding cannot tell apart candidates
  that differ by less than a pixel;
* a 15x15 aggregation box beat 5 and 9 (21 was on a par); a 7x7 majority vote over the choice map
  gained a little more, and a median filter less.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flowcli.io.image import as_rgb8
from flowcli.viz.warping import check_flow, warp_image

#: Defaults of :func:`census_transform` and :func:`fuse_candidates` (see the module docstring).
CENSUS_WINDOW = 9
CENSUS_STRIDE = 2
AGGREGATE = 15
VOTE = 7


_HAS_BITWISE_COUNT = hasattr(np, "bitwise_count")  # numpy >= 2.0
# Set bits of every byte value, for numpy versions without np.bitwise_count.
_POPCOUNT_LUT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def census_offsets(window: int = CENSUS_WINDOW, stride: int = CENSUS_STRIDE) -> list[tuple[int, int]]:
    """The neighbours a census signature compares against, as ``(dy, dx)`` pairs, bit 0 first.

    ``window`` is the odd side of the square window, ``stride`` the spacing of the sampled points
    (1 = every pixel; 2 with window 9 gives the points -4, -2, 0, 2, 4 on each axis). The centre is
    left out. Raises ValueError for an even or too small window or a stride below 1.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 3 or window % 2 == 0:
        raise ValueError(f"window must be an odd integer >= 3, got {window!r}")
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1, got {stride!r}")
    r = int(window) // 2
    steps = range(-r, r + 1, int(stride))
    offsets = [(dy, dx) for dy in steps for dx in steps if (dy, dx) != (0, 0)]
    if not offsets:
        raise ValueError(f"window {window} with stride {stride} samples no neighbour")
    return offsets


def _as_gray(image: np.ndarray, name: str) -> np.ndarray:
    """HxW float32 luminance of an image (HxWx3 RGB or HxW gray; uint8, uint16 or float in [0, 1])."""
    import cv2

    rgb = as_rgb8(image, name=name)
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError(f"{name} is empty, got shape {np.shape(image)}")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def census_transform(gray: np.ndarray, *, window: int = CENSUS_WINDOW,
                     stride: int = CENSUS_STRIDE) -> np.ndarray:
    """Census signature of every pixel of a grayscale image.

    ``gray``: HxW uint8 or float32 (other real dtypes are converted to float32). ``window`` and
    ``stride`` choose the neighbours as in :func:`census_offsets`. Bit k of a pixel's signature is
    set when neighbour k is strictly darker than the pixel. Outside the image the border pixels are
    repeated (cv2.BORDER_REPLICATE), so near the border some bits compare a pixel with itself and
    stay 0 in both frames alike.

    Returns the signatures packed into unsigned integers, bit k of the pattern = bit k of the word:
    HxW of the smallest of uint8, uint16, uint32 or uint64 that holds them when the pattern has at
    most 64 neighbours (the default has 24: uint32), else HxWxK uint64, K = ceil(neighbours / 64).
    """
    import cv2

    g = np.asarray(gray)
    if g.ndim != 2 or g.shape[0] == 0 or g.shape[1] == 0:
        raise ValueError(f"gray must be a non-empty (H, W) image, got shape {g.shape}")
    if g.dtype.kind not in "iuf":
        raise ValueError(f"gray must be numeric, got dtype {g.dtype}")
    if g.dtype not in (np.uint8, np.float32):
        g = g.astype(np.float32)
    g = np.ascontiguousarray(g)
    offsets = census_offsets(window, stride)
    r = max(max(abs(dy), abs(dx)) for dy, dx in offsets)
    h, w = g.shape
    padded = cv2.copyMakeBorder(g, r, r, r, r, cv2.BORDER_REPLICATE)
    nbytes = (len(offsets) + 7) // 8
    # Bytes per word: the smallest power of two that holds the signature (fewer planes to build and
    # fewer bytes to move per candidate), 8-byte words beyond 64 bits.
    word = 8 if nbytes > 8 else 1 << (nbytes - 1).bit_length()
    words = -(-nbytes // word)
    # One uint8 plane per byte of the signature, built with OpenCV's whole-image compare and bitwise
    # ops (about 10x faster than the same loop in numpy); cv2.merge then interleaves the planes so
    # that each pixel's bytes are adjacent and can be viewed as words (little-endian byte order on
    # every platform numpy runs on here; a big-endian machine would permute bits identically in both
    # frames, so Hamming distances are the same).
    planes = []
    for byte in range(word * words):
        acc = np.zeros((h, w), np.uint8)
        for k in range(8 * byte, min(len(offsets), 8 * byte + 8)):
            dy, dx = offsets[k]
            darker = cv2.compare(padded[r + dy:r + dy + h, r + dx:r + dx + w], g, cv2.CMP_LT)  # 255 or 0
            acc = cv2.bitwise_or(acc, cv2.bitwise_and(darker, 1 << (k % 8)))
        planes.append(acc)
    if len(planes) == 1:
        return planes[0]
    packed = cv2.merge(planes).reshape(h, w, word * words).view(np.dtype(f"<u{word}"))
    return packed[:, :, 0] if words == 1 else packed


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per element of an unsigned integer array (uint8 result, same shape)."""
    if _HAS_BITWISE_COUNT:
        return np.bitwise_count(x)
    return _popcount_lut(x)


def _popcount_lut(x: np.ndarray) -> np.ndarray:
    """Lookup-table popcount, the fallback for numpy < 2.0 (kept separate so that it can be tested)."""
    a = np.ascontiguousarray(x)
    as_bytes = a.view(np.uint8).reshape(a.shape + (a.dtype.itemsize,))
    return _POPCOUNT_LUT[as_bytes].sum(axis=-1, dtype=np.uint8)


def census_cost(census1: np.ndarray, census2_warped: np.ndarray) -> np.ndarray:
    """Per-pixel Hamming distance between two census signature maps.

    ``census1`` and ``census2_warped`` come from :func:`census_transform` with the same pattern
    (HxW or HxWxK unsigned integers, same shape): frame 1's signatures and frame 2's signatures
    brought into frame 1's grid along a flow. Returns HxW uint16: the number of neighbours whose
    darker/not-darker relation differs (0 = identical local structure).
    """
    c1 = np.asarray(census1)
    c2 = np.asarray(census2_warped)
    if c1.shape != c2.shape:
        raise ValueError(f"census maps must have the same shape, got {c1.shape} and {c2.shape}")
    if c1.ndim not in (2, 3):
        raise ValueError(f"census maps must be (H, W) or (H, W, K), got shape {c1.shape}")
    if c1.dtype.kind != "u" or c2.dtype.kind != "u":
        raise ValueError(f"census maps must be unsigned integers, got {c1.dtype} and {c2.dtype}")
    bits = _popcount(np.bitwise_xor(c1, c2))
    if bits.ndim == 3:
        return bits.sum(axis=2, dtype=np.uint16)
    return bits.astype(np.uint16)


# Added to the cost where a candidate points outside frame 2: beyond any box sum of census costs.
_BARRED = np.float32(1e30)


def _pick(mask255: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """uint8 ``a`` where ``mask255`` (uint8, 255 or 0) is 255, else ``b``."""
    import cv2

    return cv2.bitwise_or(cv2.bitwise_and(a, mask255), cv2.bitwise_and(b, cv2.bitwise_not(mask255)))


def fuse_candidates(img1: np.ndarray, img2: np.ndarray, candidates: Sequence[np.ndarray], *,
                    window: int = CENSUS_WINDOW, stride: int = CENSUS_STRIDE, aggregate: int = AGGREGATE,
                    vote: int = VOTE) -> tuple[np.ndarray, np.ndarray]:
    """Pick per pixel the candidate flow whose census matching cost is lowest.

    ``img1``, ``img2``: HxWx3 uint8 RGB frames (anything :func:`flowcli.io.as_rgb8` accepts, e.g.
    HxW gray). ``candidates``: a non-empty sequence of at most 255 HxWx2 flows from frame 1 to
    frame 2, most preferred first: on equal cost the earlier candidate wins, so the caller puts
    its most trusted flow (the full-resolution network flow) first.

    For each candidate, frame 2 is warped bilinearly to x + candidate(x) and its census taken (a
    lookup of frame 2's census at the rounded target measured worse: it cannot tell candidates
    apart by less than a pixel), compared with frame 1's census (``window``, ``stride``:
    :func:`census_transform`) and summed over an ``aggregate`` x ``aggregate`` box (1 = per pixel).
    A candidate whose target lies outside frame 2 (or is not finite) counts as a full mismatch in
    the box sums and can never win that pixel, unless every candidate points outside it: then the
    first candidate is kept. Finally a ``vote`` x ``vote`` majority vote over the choice map (0 or
    1 = off) removes isolated choices; it never moves a pixel onto a candidate that points outside
    there.

    Returns ``(flow, choice)``: the fused HxWx2 float32 flow and the HxW uint8 index of the
    candidate taken at each pixel.
    """
    import cv2

    g1, g2, cands = _checked(img1, img2, candidates, aggregate, vote)
    nbits = len(census_offsets(window, stride))
    c1 = census_transform(g1, window=window, stride=stride)
    # The per-pixel selections below use OpenCV's compare/bitwise ops on 0/255 masks: several times
    # faster than numpy's masked assignments, whose branches the random masks defeat.
    best, choice, insides = None, np.zeros(g1.shape, np.uint8), []
    for k, cand in enumerate(cands):
        warped, inside = warp_image(g2, cand)
        cost = _box_cost(census_cost(c1, census_transform(warped, window=window, stride=stride)), inside, nbits,
                         aggregate)
        if best is None:
            best = cost
        else:
            better = cv2.compare(cost, best, cv2.CMP_LT)  # strict: on a tie the earlier candidate stays
            choice = _pick(better, np.full_like(choice, k), choice)
            best = cv2.min(best, cost)
        insides.append(inside)
    if vote > 1 and len(cands) > 1:
        choice = _majority_vote(choice, insides, vote)
    flow = cands[0].copy()
    for k in range(1, len(cands)):
        flow = cv2.copyTo(cands[k], (choice == k).view(np.uint8), flow)
    return flow, choice


def _checked(img1, img2, candidates, aggregate, vote):
    """Gray frames and float32 candidates, checked."""
    for name, value in (("aggregate", aggregate), ("vote", vote)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    g1 = _as_gray(img1, "img1")
    g2 = _as_gray(img2, "img2")
    if g1.shape != g2.shape:
        raise ValueError(f"img1 and img2 must have the same size, got {g1.shape} and {g2.shape} (H, W)")
    if isinstance(candidates, np.ndarray) and candidates.ndim == 3:
        raise ValueError(f"candidates must be a sequence of (H, W, 2) flows, got one array of shape "
                         f"{candidates.shape}; wrap it in a list")
    cands = [check_flow(c, g1.shape, name=f"candidates[{i}]").astype(np.float32, copy=False)
             for i, c in enumerate(candidates)]
    if not cands:
        raise ValueError("candidates is empty: give at least one flow")
    if len(cands) > 255:
        raise ValueError(f"at most 255 candidates fit the uint8 choice map, got {len(cands)}")
    return g1, g2, cands


def _box_cost(cost: np.ndarray, inside: np.ndarray, nbits: int, aggregate: int) -> np.ndarray:
    """A candidate's census cost summed over the box, pixels pointing outside barred."""
    import cv2

    outside = (~inside).astype(np.float32)
    # Outside pixels count as a full mismatch in their neighbours' sums (a census cost is at most nbits), then are
    # barred outright by a huge cost; all-outside pixels then tie, and ties keep the first candidate.
    cost = cv2.max(cost.astype(np.float32), outside * np.float32(nbits))
    if aggregate > 1:
        # Box sums of small integers are exact in float32, so equal candidates tie exactly.
        cost = cv2.boxFilter(cost, -1, (aggregate, aggregate), normalize=False, borderType=cv2.BORDER_REFLECT_101)
    return cv2.scaleAdd(outside, _BARRED, cost)


def _majority_vote(choice: np.ndarray, insides: list, vote: int) -> np.ndarray:
    """Each pixel takes the candidate most pixels of its vote box chose (the earlier one on ties), unless that one
    points outside there: then the raw choice stays."""
    import cv2

    voted, most = np.zeros_like(choice), None
    for k in range(len(insides)):
        count = cv2.boxFilter((choice == k).view(np.uint8), cv2.CV_16U, (vote, vote), normalize=False,
                              borderType=cv2.BORDER_REFLECT_101)
        if most is None:
            most = count
        else:
            more = cv2.compare(count, most, cv2.CMP_GT)
            voted = _pick(more, np.full_like(voted, k), voted)
            most = cv2.max(most, count)
    ok = np.zeros(choice.shape, bool)
    for k, inside in enumerate(insides):
        ok |= (voted == k) & inside
    return _pick(ok.view(np.uint8) * np.uint8(255), voted, choice)
