"""Classical optical-flow baselines from OpenCV, behind the same interface as the network.

``flowcli eval --baseline NAME`` scores these through exactly the code path the network takes, so the comparison
tables in the README and the model card are produced by the tool itself rather than copied from papers.

=============  ========================================================================================
name           method
=============  ========================================================================================
``dis``        Dense Inverse Search (Kroeger et al., ECCV 2016), ``DISOPTICAL_FLOW_PRESET_MEDIUM``: the
               "DIS medium" the model card compares against
``deepflow``   DeepFlow (Weinzaepfel et al., ICCV 2013), ``cv2.optflow``; needs opencv-contrib-python
``farneback``  Farneback polynomial expansion (SCIA 2003) with the parameters of OpenCV's own
               dense-flow tutorial (pyramid scale 0.5, 3 levels, window 15, 3 iterations, poly_n 5,
               poly_sigma 1.2)
=============  ========================================================================================

All three work on 8-bit grayscale (converted from RGB with OpenCV's luma weights) and return HxWx2 float32 flow
in pixels, channel 0 horizontal, with ``img2[y + v, x + u] ~ img1[y, x]`` - the convention of
:func:`flowcli.estimate_flow`.  Only numpy and OpenCV are imported: no torch.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Dict, Iterable, List, Tuple

import numpy as np

from flowcli.io.image import as_rgb8

__all__ = ["BASELINES", "Baseline", "BaselineEstimator", "baseline_flow"]

# The parameters of OpenCV's dense optical-flow tutorial (samples/python/tutorial_code/video/optical_flow),
# the values most published "Farneback" numbers use.
FARNEBACK_PARAMS = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def _cv2():
    import cv2  # imported on use so that listing the baselines costs nothing

    return cv2


def _make_dis():
    cv2 = _cv2()
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def _make_dis_fine():
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # patches matched down to the full resolution (the medium preset stops at 1/2) and twice as densely: several
    # times the cost of the preset, and about twice as precise on small motions (weights/MODEL_CARD.md)
    dis.setFinestScale(0)
    dis.setPatchStride(2)
    return dis


def _make_deepflow():
    cv2 = _cv2()
    optflow = getattr(cv2, "optflow", None)
    if optflow is None or not hasattr(optflow, "createOptFlow_DeepFlow"):
        raise RuntimeError(f"deepflow needs opencv-contrib-python (cv2.optflow); the installed OpenCV "
                           f"{cv2.__version__} has no cv2.optflow.createOptFlow_DeepFlow")
    return optflow.createOptFlow_DeepFlow()


class _Farneback:
    """Farneback as an object with ``calc(gray1, gray2, None)``, like the other two."""

    def calc(self, gray1: np.ndarray, gray2: np.ndarray, flow=None) -> np.ndarray:
        p = FARNEBACK_PARAMS
        return _cv2().calcOpticalFlowFarneback(gray1, gray2, None, p["pyr_scale"], p["levels"], p["winsize"],
                                               p["iterations"], p["poly_n"], p["poly_sigma"], p["flags"])


@dataclass(frozen=True)
class Baseline:
    """One classical method: its registry name, a label for tables, and a factory of OpenCV objects."""

    name: str
    label: str
    factory: Callable[[], object]
    description: str = ""


BASELINES: Dict[str, Baseline] = {
    "dis": Baseline("dis", "DIS medium", _make_dis, "Dense Inverse Search, OpenCV preset MEDIUM"),
    "dis-fine": Baseline("dis-fine", "DIS fine", _make_dis_fine,
                         "Dense Inverse Search, preset MEDIUM matched down to full resolution with patch stride 2"),
    "deepflow": Baseline("deepflow", "DeepFlow", _make_deepflow, "DeepFlow, cv2.optflow (opencv-contrib)"),
    "farneback": Baseline("farneback", "Farneback", _Farneback,
                          "Farneback, OpenCV tutorial parameters (0.5, 3, 15, 3, 5, 1.2)"),
}


def _lookup(name: str) -> Baseline:
    key = str(name).lower()
    if key not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; expected one of {', '.join(BASELINES)}")
    return BASELINES[key]


def _gray(img: np.ndarray, what: str) -> np.ndarray:
    rgb = as_rgb8(img, name=what)
    return _cv2().cvtColor(rgb, _cv2().COLOR_RGB2GRAY)


def _pair_to_gray(img1: np.ndarray, img2: np.ndarray, names=("image 1", "image 2")) -> Tuple[np.ndarray, np.ndarray]:
    g1, g2 = _gray(img1, names[0]), _gray(img2, names[1])
    if g1.shape != g2.shape:
        raise ValueError(f"{names[0]} and {names[1]} differ in size: {g1.shape[1]}x{g1.shape[0]} vs "
                         f"{g2.shape[1]}x{g2.shape[0]}")
    return g1, g2


def _finish(flow: np.ndarray, shape: Tuple[int, int], name: str) -> np.ndarray:
    flow = np.asarray(flow, dtype=np.float32)
    if flow.shape != (shape[0], shape[1], 2):
        raise RuntimeError(f"{name}: OpenCV returned flow of shape {flow.shape} for a {shape[1]}x{shape[0]} image")
    return np.ascontiguousarray(flow)


def baseline_flow(name: str, img1_rgb: np.ndarray, img2_rgb: np.ndarray) -> np.ndarray:
    """Flow from ``img1_rgb`` to ``img2_rgb`` (HxWx3 uint8 RGB, or anything :func:`flowcli.io.as_rgb8` takes)
    by the baseline ``name`` (a key of :data:`BASELINES`); HxWx2 float32 in pixels.  Builds a fresh OpenCV
    object each call; use :class:`BaselineEstimator` for many pairs."""
    base = _lookup(name)
    g1, g2 = _pair_to_gray(img1_rgb, img2_rgb)
    return _finish(base.factory().calc(g1, g2, None), g1.shape, base.name)


class BaselineEstimator:
    """A baseline with :class:`flowcli.api.Estimator`'s interface: ``estimate(img1, img2)`` and
    ``estimate_batch(pairs, batch_size=...)`` (pairs run one after the other; ``batch_size`` is accepted and
    ignored, as these methods have no batched form).

    ``name`` is the registry key, ``label`` the table label.  One OpenCV object is kept per thread (they hold
    per-call buffers and are not documented as thread-safe).
    """

    def __init__(self, name: str) -> None:
        self.baseline = _lookup(name)
        self.name = self.baseline.name
        self.label = self.baseline.label
        self._local = threading.local()
        self._algo()  # fail now (e.g. no cv2.optflow), not at the first pair

    def _algo(self):
        algo = getattr(self._local, "algo", None)
        if algo is None:
            algo = self._local.algo = self.baseline.factory()
        return algo

    def estimate(self, img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
        """One pair -> HxWx2 float32 flow in pixels (channel 0 horizontal)."""
        return self.estimate_batch([(img1, img2)])[0]

    def estimate_batch(self, pairs: Iterable[Tuple[np.ndarray, np.ndarray]], *, batch_size: int = 1) -> List[np.ndarray]:
        """Many pairs -> list of flows, in order."""
        out = []
        for i, (a, b) in enumerate(pairs):
            g1, g2 = _pair_to_gray(a, b, (f"pair {i} image 1", f"pair {i} image 2"))
            out.append(_finish(self._algo().calc(g1, g2, None), g1.shape, self.name))
        return out

    def __repr__(self) -> str:
        return f"BaselineEstimator({self.name!r})"
