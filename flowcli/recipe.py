"""Inference recipes: what runs around the network, carried by the weights as data.

A :class:`Recipe` names its candidate flows, how one of them is selected per pixel, and an optional variational
refinement (:func:`flowcli.postprocess.variational_refine`, OpenCV's solver, coarse to fine), which restores the
sub-pixel precision that real footage needs (FlowNet's "+v" variants refine the network's output the same way).

Candidates (:data:`CANDIDATE_KINDS`), written as short specs:

* ``net@S``: the network on the frames resized by ``S`` (``net@1`` is the original network; ``net@0.25`` reaches
  four times larger motions at a sixteenth of the cost, coarsely); ``net@S:NAME`` runs it with the weight set
  ``NAME`` that the checkpoint carries beside its main weights (:attr:`flowcli.weights.Checkpoint.weight_sets`, e.g.
  weights trained for large motions, used for a coarse candidate only);
* ``cascade@B`` (or ``cascade@B/R``): the network run again, at scale ``R`` (default 1), on frame 1 and frame 2
  warped back by the ``net@B`` flow; its residual composed with that flow (FlowNet2's stacking, without training):
  the large motions of the coarse pass with the detail of the fine one;
* ``dis``: OpenCV's DIS (medium preset), precise where there is texture, 0.03 s a pair;
* ``dis-fine``: DIS matched down to full resolution with twice the patch density: about twice as precise on small
  motions as the preset, for a few times its cost;
* ``deepflow``: OpenCV's DeepFlow (opencv-contrib), precise on small motions, about as slow as the network.

Selection (``selection["method"]``): ``"census"`` keeps per pixel the candidate with the lowest census matching cost
(:func:`flowcli.postprocess.fuse_candidates`; its keyword arguments ride along); ``"learned"`` scores every candidate
with a small learned scorer over matching costs, agreement between candidates and smoothness
(:mod:`flowcli.postprocess.selection`; its weights ride along).

:data:`PLAIN` is the original network alone: what a public LiteFlowNet checkpoint runs by default, so that its output
is the original's. A checkpoint's metadata may name another default (``meta["recipe"]``) and presets
(``meta["recipes"]``: ``fast``, ``quality``), see :mod:`flowcli.weights`. Metadata is untrusted input:
:meth:`Recipe.from_dict` checks every setting with bounds, and refuses deep or huge structures before walking them.

numpy and OpenCV only: the network's part is :class:`flowcli.api.Estimator`'s; :meth:`Recipe.finish` is the CPU part
(classical candidates, selection, refinement), safe to run in worker threads beside the network.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["CANDIDATE_KINDS", "PLAIN", "PRESETS", "Recipe", "SCALE_RANGE", "WEIGHT_SET_NAME", "bounded", "check_scales",
           "parse_candidate", "resolve_recipe"]

#: Range of a single network input scale (a factor on the image size before the rounding to multiples of 32).
SCALE_RANGE = (1 / 16, 4.0)
#: The kinds of candidate a recipe may name.
CANDIDATE_KINDS = ("net", "cascade", "dis", "dis-fine", "deepflow")
#: The recipe names the command line and :func:`resolve_recipe` know.
PRESETS = ("fast", "default", "quality", "plain")
MAX_CANDIDATES = 8
#: How a checkpoint's extra weight set is named (``net@0.5:large``).
WEIGHT_SET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
# Bounds on untrusted metadata: nesting depth and the number of values walked (a learned selector holds ~500).
MAX_DEPTH = 6
MAX_VALUES = 20_000

# Bounds of the refinement's and the census fusion's settings, (low, high, integer?); see their modules.
_REFINE_BOUNDS = {"alpha": (0.0, 1e4, False), "delta": (0.0, 1e4, False), "gamma": (0.0, 1e4, False),
                  "epsilon": (1e-9, 1.0, False), "sor_iterations": (1, 100, True),
                  "fixed_point_iterations": (1, 200, True), "omega": (1e-3, 1.999, False), "octaves": (1, 8, True)}
_CENSUS_BOUNDS = {"window": (3, 15, True), "stride": (1, 4, True), "aggregate": (0, 63, True), "vote": (0, 63, True)}
_ALIGN_BOUNDS = {"min_shift": (0.0, 1e4, False), "min_gain": (-1.0, 1.0, False), "width": (32, 4096, True)}


def check_scales(values: Sequence[Any], what: str = "recipe scales") -> tuple[float, ...]:
    """Network input scales as floats, each in :data:`SCALE_RANGE`, all different; else a ValueError naming ``what``."""
    lo, hi = SCALE_RANGE
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be numbers, got {values!r}") from None
    if not out:
        raise ValueError(f"{what}: at least one scale is needed")
    bad = [v for v in out if not (lo <= v <= hi)]  # also refuses nan
    if bad:
        raise ValueError(f"{what} must be in [{lo:g}, {hi:g}], got {', '.join(f'{v:g}' for v in bad)}")
    if len(set(out)) != len(out):
        raise ValueError(f"{what} must differ, got {', '.join(f'{v:g}' for v in out)}")
    return out


@dataclass(frozen=True)
class Candidate:
    """A parsed candidate spec: ``kind`` and, for the network kinds, ``scale`` (net) or ``base``/``scale``
    (cascade: the base pass's scale, the residual pass's scale); ``weights``: the checkpoint's weight set a ``net``
    candidate runs with ("" for the main weights)."""

    kind: str
    scale: float = 1.0
    base: float = 0.25
    weights: str = ""

    @property
    def spec(self) -> str:
        if self.kind == "net":
            return f"net@{self.scale:g}" + (f":{self.weights}" if self.weights else "")
        if self.kind == "cascade":
            return f"cascade@{self.base:g}" + ("" if self.scale == 1 else f"/{self.scale:g}")
        return self.kind

    @property
    def uses_network(self) -> bool:
        return self.kind in ("net", "cascade")

    @property
    def selector_kind(self) -> str:
        """The kind a learned selector knows it by (:data:`flowcli.postprocess.selection.KINDS`)."""
        if self.kind == "net":
            return "net" if self.scale >= 0.5 else "net-coarse"
        return "dis" if self.kind == "dis-fine" else self.kind  # the same method, matched more finely

    def scaled(self, factor: float) -> "Candidate":
        return self if not self.uses_network else replace(self, scale=self.scale * factor, base=self.base * factor)


def parse_candidate(spec: Any) -> Candidate:
    """``"net@0.25"``, ``"net@0.5:large"``, ``"cascade@0.25"``, ``"cascade@0.25/0.5"``, ``"dis"``, ``"dis-fine"``,
    ``"deepflow"`` -> :class:`Candidate`; ValueError saying what was expected."""
    if not isinstance(spec, str) or len(spec) > 40:
        raise ValueError(f"a recipe candidate must be a short string such as 'net@1', got {spec!r}")
    kind, _, arg = spec.strip().partition("@")
    if kind in ("dis", "dis-fine", "deepflow") and not arg:
        return Candidate(kind)
    if kind == "net" and arg:
        arg, colon, weights = arg.partition(":")
        if colon and not WEIGHT_SET_NAME.match(weights):
            raise ValueError(f"candidate {spec!r}: a weight set is named by lower-case letters, digits, '-' or '_' "
                             f"(at most 24), got {weights!r}")
        return Candidate("net", check_scales([arg], f"candidate {spec!r}: scale")[0], weights=weights)
    if kind == "cascade" and arg:
        base, _, residual = arg.partition("/")
        return Candidate("cascade", check_scales([residual or 1], f"candidate {spec!r}: residual scale")[0],
                         check_scales([base], f"candidate {spec!r}: base scale")[0])
    raise ValueError(f"unknown recipe candidate {spec!r}; expected net@S, net@S:WEIGHTS, cascade@B, cascade@B/R, dis, "
                     "dis-fine or deepflow")


def bounded(value: Any, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES, what: str = "recipe") -> None:
    """Refuse (ValueError) plain data nested deeper than ``max_depth`` or holding more than ``max_values`` values, or
    holding anything but numbers, strings, lists and mappings. Walks at most ``max_values`` items with an explicit
    stack: a hostile 10,000-deep nesting never reaches Python's recursion limit, a huge list is refused by its length."""
    stack, seen = [(value, 0)], 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            raise ValueError(f"{what} holds more than {max_values} values")
        if depth > max_depth:
            raise ValueError(f"{what} is nested deeper than {max_depth} levels")
        if isinstance(item, Mapping) or isinstance(item, (list, tuple)):
            if len(item) > max_values:
                raise ValueError(f"{what} holds more than {max_values} values")
            values = list(item.keys()) + list(item.values()) if isinstance(item, Mapping) else item
            stack.extend((v, depth + 1) for v in values)
        elif not (item is None or isinstance(item, (str, bool, int, float, np.integer, np.floating))):
            raise ValueError(f"{what} holds a value of type {type(item).__name__}; only numbers, strings, lists and "
                             "mappings are allowed")
        elif isinstance(item, str) and len(item) > 10_000:
            raise ValueError(f"{what} holds a string of {len(item)} characters")


def _check_settings(d: Any, bounds: dict, what: str) -> dict:
    if not isinstance(d, Mapping):
        raise ValueError(f"{what} must be a mapping of settings, got {type(d).__name__}")
    unknown = sorted(str(k) for k in d if k not in bounds)
    if unknown:
        raise ValueError(f"unknown {what} setting(s): {', '.join(unknown)}")
    out = {}
    for key, value in d.items():
        lo, hi, integer = bounds[key]
        ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
        if ok and integer:
            ok = float(value).is_integer()
        if not ok or not (math.isfinite(float(value)) and lo <= float(value) <= hi):
            raise ValueError(f"{what} {key} must be {'an integer' if integer else 'a number'} in [{lo:g}, {hi:g}], "
                             f"got {value!r}")
        out[key] = int(value) if integer else float(value)
    if what == "census selection" and "window" in out and out["window"] % 2 == 0:
        raise ValueError(f"census selection window must be odd, got {out['window']}")
    return out


def _check_selection(d: Any) -> tuple[dict, Any]:
    """(the checked selection settings, the learned :class:`~flowcli.postprocess.selection.Selector` or None)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"recipe selection must be a mapping, got {type(d).__name__}")
    method = d.get("method", "census")
    rest = {k: v for k, v in d.items() if k != "method"}
    if method == "census":
        return {"method": "census", **_check_settings(rest, _CENSUS_BOUNDS, "census selection")}, None
    if method == "learned":
        from flowcli.postprocess.selection import Selector

        selector = Selector.from_dict(d)
        return selector.to_dict(), selector
    raise ValueError(f"recipe selection method must be 'census' or 'learned', got {method!r}")


@dataclass(frozen=True)
class Recipe:
    """``candidates``: candidate specs (see the module docstring), the first preferred where a selection ties;
    ``selection``: how one is chosen per pixel (``{"method": "census", ...}`` or ``{"method": "learned", ...}``; used
    where there are several); ``refine``: keyword arguments of :func:`~flowcli.postprocess.variational_refine`, or None
    for no refinement; ``align``: keyword arguments of :func:`~flowcli.postprocess.align.global_offset`, or None: where
    set, a long dominant translation (a camera pan) is taken out of the pair first (:meth:`prepare`) and added back to
    the flow (:meth:`finish`), so that every candidate estimates only what moves against it; ``bf16``: run the network
    under bfloat16 autocast where the device computes it natively (the measured accuracy of the weights allows it),
    unless the caller asks for a precision. ``name`` is for display.

    Every setting is checked here, with bounds: a recipe that names an unknown candidate or impossible settings is
    refused when it is made (when the weights are loaded), never halfway through a job."""

    candidates: tuple[str, ...] = ("net@1",)
    selection: Mapping[str, Any] = field(default_factory=lambda: {"method": "census"})
    refine: Optional[Mapping[str, Any]] = None
    bf16: bool = False
    name: str = "custom"
    align: Optional[Mapping[str, Any]] = None
    # made once when the recipe is checked, not once per pair: the learned selection's scorer, the parsed candidates
    _selector: Any = field(default=None, init=False, repr=False, compare=False)
    _parsed: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.candidates, str) or not isinstance(self.candidates, Sequence):
            raise ValueError(f"recipe candidates must be a list of specs, got {self.candidates!r}")
        if not 1 <= len(self.candidates) <= MAX_CANDIDATES:
            raise ValueError(f"a recipe needs 1 to {MAX_CANDIDATES} candidates, got {len(self.candidates)}")
        parsed = [parse_candidate(c) for c in self.candidates]
        specs = tuple(c.spec for c in parsed)
        if len(set(specs)) != len(specs):
            raise ValueError(f"recipe candidates must differ, got {', '.join(specs)}")
        object.__setattr__(self, "candidates", specs)
        object.__setattr__(self, "_parsed", tuple(parsed))
        selection, selector = _check_selection(self.selection or {})
        object.__setattr__(self, "selection", selection)
        object.__setattr__(self, "_selector", selector)
        if self.refine is not None:
            object.__setattr__(self, "refine", _check_settings(self.refine, _REFINE_BOUNDS, "refinement"))
        if self.align is not None:
            object.__setattr__(self, "align", _check_settings(self.align, _ALIGN_BOUNDS, "alignment"))
        if not isinstance(self.bf16, bool):
            raise ValueError(f"recipe bf16 must be true or false, got {self.bf16!r}")
        if not isinstance(self.name, str) or len(self.name) > 64:
            raise ValueError(f"recipe name must be a short string, got {self.name!r}")

    @property
    def parsed(self) -> list[Candidate]:
        """The candidates as :class:`Candidate`, in recipe order."""
        return list(self._parsed)

    @property
    def network_candidates(self) -> list[Candidate]:
        """The candidates the network computes (:meth:`flowcli.api.Estimator.candidates`), in recipe order."""
        return [c for c in self.parsed if c.uses_network]

    @property
    def scales(self) -> tuple[float, ...]:
        """The scales of the ``net@S`` candidates with the main weights, in recipe order (empty where there is none)."""
        return tuple(c.scale for c in self.parsed if c.kind == "net" and not c.weights)

    @property
    def weight_sets(self) -> tuple[str, ...]:
        """The checkpoint's extra weight sets the candidates name (``net@S:NAME``), in recipe order, each once."""
        return tuple(dict.fromkeys(c.weights for c in self.parsed if c.weights))

    @property
    def is_plain(self) -> bool:
        """One network candidate and no refinement: the network's output is the result."""
        return len(self.candidates) == 1 and self.parsed[0].kind == "net" and self.refine is None

    def scaled(self, factor: float) -> "Recipe":
        """Every network scale multiplied by ``factor`` (``--scale``: run everything on larger or smaller images)."""
        if factor == 1:
            return self
        return replace(self, candidates=tuple(c.scaled(factor).spec for c in self.parsed),
                       name=f"{self.name} x{factor:g}")

    def with_overrides(self, *, scales: Optional[Sequence[float]] = None, refine: Optional[bool] = None,
                       candidates: Optional[Sequence[str]] = None) -> "Recipe":
        """This recipe with other ``candidates``, or other ``scales`` for its ``net@S`` candidates with the main weights
        (the others kept), and/or refinement switched on (the recipe's own settings, or the refinement's defaults) or
        off."""
        out = self
        if candidates is not None:
            out = replace(out, candidates=tuple(candidates), name="custom")
        if scales is not None:
            nets = [f"net@{s:g}" for s in check_scales(scales, "--scales")]
            rest = [c.spec for c in out.parsed if c.kind != "net" or c.weights]
            out = replace(out, candidates=tuple(nets + rest), name="custom")
        if refine is not None and refine != (out.refine is not None):
            out = replace(out, refine=(self.refine or {}) if refine else None, name="custom")
        return out

    def check_available(self) -> "Recipe":
        """Raise (RuntimeError, one line) where a classical candidate cannot run here, e.g. ``deepflow`` without
        opencv-contrib's ``cv2.optflow``: found when the recipe is chosen, not at the first pair of a job."""
        from flowcli.baselines import BASELINES

        for c in self.parsed:
            if not c.uses_network:
                BASELINES[c.kind].factory()
        return self

    def classical_flows(self, img1: np.ndarray, img2: np.ndarray) -> dict[str, np.ndarray]:
        """The candidates OpenCV computes (``dis``, ``dis-fine``, ``deepflow``) for one pair, by spec."""
        from flowcli.baselines import baseline_flow

        return {c.spec: baseline_flow(c.kind, img1, img2) for c in self.parsed if not c.uses_network}

    def all_candidates(self, img1: np.ndarray, img2: np.ndarray, network: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Every candidate flow of one pair in recipe order, given the network's (:attr:`network_candidates` order)."""
        nets = self.network_candidates
        if len(network) != len(nets):
            raise ValueError(f"recipe has {len(nets)} network candidates, got {len(network)} flows")
        classical = self.classical_flows(img1, img2)
        by_spec = dict(zip((c.spec for c in nets), network))
        return [by_spec[c.spec] if c.uses_network else classical[c.spec] for c in self.parsed]

    def select(self, img1: np.ndarray, img2: np.ndarray, flows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(selected flow, HxW uint8 index of the candidate taken) from all candidate flows in recipe order."""
        if len(flows) == 1:
            return np.asarray(flows[0], np.float32), np.zeros(np.shape(flows[0])[:2], np.uint8)
        if self._selector is not None:
            from flowcli.postprocess.selection import select_candidates

            return select_candidates(img1, img2, flows, [c.selector_kind for c in self.parsed], self._selector)
        from flowcli.postprocess import fuse_candidates

        return fuse_candidates(img1, img2, list(flows), **{k: v for k, v in self.selection.items() if k != "method"})

    def prepare(self, img1: np.ndarray, img2: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """``(frame 2 as the candidates see it, offset)``: with ``align`` set and a long dominant translation found,
        frame 2 shifted back by it (whole pixels) and that translation ``(dx, dy)``; else frame 2 and ``(0, 0)``."""
        if self.align is None:
            return img2, (0, 0)
        from flowcli.postprocess.align import global_offset, shift_back

        dx, dy = global_offset(img1, img2, **self.align)
        return shift_back(img2, dx, dy), (dx, dy)

    def finish(self, img1: np.ndarray, img2: np.ndarray, network: Sequence[np.ndarray],
               offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The CPU part for one pair: the classical candidates, the selection and the refinement; returns an HxWx2
        float32 flow. ``img1``/``img2`` are the HxWx3 uint8 RGB inputs (frame 2 as :meth:`prepare` returned it),
        ``network`` the network's candidate flows in :attr:`network_candidates` order, ``offset`` the translation
        :meth:`prepare` took out, added back here."""
        flow, _ = self.select(img1, img2, self.all_candidates(img1, img2, network))
        if self.refine is not None:
            from flowcli.postprocess import variational_refine

            flow = variational_refine(img1, img2, flow, **self.refine)
        flow = np.ascontiguousarray(flow, dtype=np.float32)
        if offset != (0, 0):
            flow = flow + np.array(offset, np.float32)  # a new array: a candidate's flow may be the one selected
        return flow

    def to_dict(self) -> dict:
        """Plain values for a checkpoint's metadata (``Recipe.from_dict`` reads it back)."""
        out = {"name": self.name, "candidates": list(self.candidates), "selection": dict(self.selection),
               "refine": None if self.refine is None else dict(self.refine), "bf16": self.bf16}
        return out if self.align is None else {**out, "align": dict(self.align)}

    @classmethod
    def from_dict(cls, d: Any) -> "Recipe":
        """A recipe from plain values (a checkpoint's metadata, a JSON file), checked with bounds. Also reads the
        older form ``{"scales": [...], "fusion": {...}}`` (``net@S`` candidates, census selection)."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a recipe must be a mapping of settings, got {type(d).__name__}")
        bounded(d)
        unknown = sorted(str(k) for k in set(d) - {"name", "scales", "fusion", "candidates", "selection", "refine",
                                                    "bf16", "align"})
        if unknown:
            raise ValueError(f"unknown recipe setting(s): {', '.join(unknown)}")
        candidates = d.get("candidates")
        if candidates is None:
            scales = d.get("scales") or (1.0,)
            if not isinstance(scales, (list, tuple)):
                raise ValueError(f"recipe scales must be a list of numbers, got {scales!r}")
            candidates = [f"net@{s:g}" for s in check_scales(scales)]
        elif "scales" in d:
            raise ValueError("a recipe names either candidates or scales, not both")
        selection = d.get("selection")
        if selection is None:
            fusion = d.get("fusion") or {}
            if not isinstance(fusion, Mapping):
                raise ValueError(f"recipe fusion must be a mapping, got {type(fusion).__name__}")
            selection = {"method": "census", **fusion}
        return cls(candidates=tuple(candidates) if isinstance(candidates, (list, tuple)) else candidates,
                   selection=selection, refine=d.get("refine"), bf16=d.get("bf16", False),
                   name=str(d.get("name", "custom"))[:64], align=d.get("align"))

    def describe(self) -> str:
        """One line: ``default: net@1, net@0.25, dis; learned selection; variational refinement; bf16 where native``."""
        parts = [", ".join(self.candidates)]
        if self.align is not None:
            parts.append(f"pans of {self.align.get('min_shift', 24):g}+ px taken out first")
        if len(self.candidates) > 1:
            method = self.selection["method"]
            parts.append(f"{method} selection" + ("" if method == "learned" else _kwargs(
                {k: v for k, v in self.selection.items() if k != "method"})))
        parts.append("no refinement" if self.refine is None else "variational refinement" + _kwargs(self.refine))
        if self.bf16:
            parts.append("bf16 where native")
        return f"{self.name}: " + "; ".join(parts)


def _kwargs(d: Mapping[str, Any]) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in d.items())})" if d else ""


#: The original network alone.
PLAIN = Recipe(name="plain")


def resolve_recipe(recipe: "str | Mapping | Recipe | None", default: Recipe,
                   presets: Optional[Mapping[str, Recipe]] = None) -> Recipe:
    """``None`` or ``"default"`` -> ``default`` (the weights' own recipe); ``"plain"`` -> :data:`PLAIN`; ``"fast"`` /
    ``"quality"`` -> the weights' preset of that name (``presets``); a mapping -> :meth:`Recipe.from_dict`; a
    :class:`Recipe` as it is."""
    if recipe is None or recipe == "default":
        return default
    if recipe == "plain":
        return PLAIN
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(recipe)
    if isinstance(recipe, str) and recipe in PRESETS:
        if presets and recipe in presets:
            return presets[recipe]
        raise ValueError(f"these weights have no {recipe!r} recipe; they have "
                         f"{', '.join(['default', 'plain', *sorted(presets or {})])}")
    raise ValueError(f"recipe must be one of {', '.join(PRESETS)}, a dict or a Recipe, got {recipe!r}")
