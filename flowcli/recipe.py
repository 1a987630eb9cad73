"""Inference recipes: what runs around the network, carried by the weights as data.

A :class:`Recipe` names the input scales the network runs at (each gives a candidate flow, in the input's pixels),
how the candidates are fused per pixel (:func:`flowcli.postprocess.fuse_candidates`: the lowest census matching cost
wins, so a coarse scale can supply the large motions the full-resolution pass misses), and an optional variational
refinement (:func:`flowcli.postprocess.variational_refine`, OpenCV's solver, coarse to fine), which restores the
sub-pixel precision that real footage needs. FlowNet's "+v" variants refine the network's output the same way.

:data:`PLAIN` is the original network alone (one scale, no fusion, no refinement): what a public LiteFlowNet checkpoint
runs by default, so that its output is the original's. A checkpoint's metadata may name another default
(``meta["recipe"]``, see :mod:`flowcli.weights`).

numpy and OpenCV only: the network's part is :class:`flowcli.api.Estimator`'s; :meth:`Recipe.finish` is the CPU part,
safe to run in worker threads beside the network.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping, Optional, Sequence

import numpy as np

__all__ = ["PLAIN", "Recipe", "SCALE_RANGE", "resolve_recipe"]

#: Range of a single network input scale (a factor on the image size before the rounding to multiples of 32).
SCALE_RANGE = (1 / 16, 4.0)


def _scales(values: Sequence[Any]) -> tuple[float, ...]:
    lo, hi = SCALE_RANGE
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"recipe scales must be numbers, got {values!r}") from None
    if not out:
        raise ValueError("a recipe needs at least one scale")
    bad = [v for v in out if not (lo <= v <= hi)]  # also refuses nan
    if bad:
        raise ValueError(f"recipe scales must be in [{lo:g}, {hi:g}], got {', '.join(f'{v:g}' for v in bad)}")
    if len(set(out)) != len(out):
        raise ValueError(f"recipe scales must differ, got {', '.join(f'{v:g}' for v in out)}")
    return out


@dataclass(frozen=True)
class Recipe:
    """``scales``: network input scales, the first one preferred where candidates tie; ``fusion``: keyword arguments
    of :func:`~flowcli.postprocess.fuse_candidates` (used when there are several scales; ``{}`` = its defaults);
    ``refine``: keyword arguments of :func:`~flowcli.postprocess.variational_refine`, or None for no refinement.
    ``name`` is for display (``"plain"``, ``"default"``, ``"custom"``)."""

    scales: tuple[float, ...] = (1.0,)
    fusion: Mapping[str, Any] = field(default_factory=dict)
    refine: Optional[Mapping[str, Any]] = None
    name: str = "custom"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", _scales(self.scales))
        object.__setattr__(self, "fusion", dict(self.fusion or {}))
        if self.refine is not None:
            object.__setattr__(self, "refine", dict(self.refine))

    @property
    def is_plain(self) -> bool:
        """One scale and no refinement: the network's output is the result."""
        return len(self.scales) == 1 and self.refine is None

    def scaled(self, factor: float) -> "Recipe":
        """Every scale multiplied by ``factor`` (``--scale``: run everything on larger or smaller images)."""
        if factor == 1:
            return self
        return replace(self, scales=tuple(s * factor for s in self.scales), name=f"{self.name} x{factor:g}")

    def with_overrides(self, *, scales: Optional[Sequence[float]] = None, refine: Optional[bool] = None) -> "Recipe":
        """This recipe with other ``scales`` and/or refinement switched on (the recipe's own settings, or the
        defaults of :func:`~flowcli.postprocess.variational_refine` where it has none) or off."""
        out = self
        if scales is not None:
            out = replace(out, scales=tuple(scales), name="custom")
        if refine is not None and refine != (out.refine is not None):
            out = replace(out, refine=(self.refine or {}) if refine else None, name="custom")
        return out

    def finish(self, img1: np.ndarray, img2: np.ndarray, candidates: Sequence[np.ndarray]) -> np.ndarray:
        """The CPU part: fuse the candidate flows (one per scale, in the order of ``scales``) and refine; returns an
        HxWx2 float32 flow. ``img1``/``img2`` are the HxWx3 uint8 RGB inputs."""
        if len(candidates) != len(self.scales):
            raise ValueError(f"recipe has {len(self.scales)} scales, got {len(candidates)} candidate flows")
        flow = candidates[0]
        if len(candidates) > 1:
            from flowcli.postprocess import fuse_candidates

            flow, _ = fuse_candidates(img1, img2, list(candidates), **self.fusion)
        if self.refine is not None:
            from flowcli.postprocess import variational_refine

            flow = variational_refine(img1, img2, flow, **self.refine)
        return np.ascontiguousarray(flow, dtype=np.float32)

    def to_dict(self) -> dict:
        """Plain values for a checkpoint's metadata (``Recipe.from_dict`` reads it back)."""
        return {"name": self.name, "scales": list(self.scales), "fusion": dict(self.fusion),
                "refine": None if self.refine is None else dict(self.refine)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Recipe":
        unknown = sorted(set(d) - {"name", "scales", "fusion", "refine"})
        if unknown:
            raise ValueError(f"unknown recipe setting(s): {', '.join(unknown)}")
        return cls(scales=tuple(d.get("scales") or (1.0,)), fusion=dict(d.get("fusion") or {}),
                   refine=None if d.get("refine") is None else dict(d["refine"]), name=str(d.get("name", "custom")))

    def describe(self) -> str:
        """One line: ``default: scales 1, 0.5, 0.25; census fusion; variational refinement``."""
        parts = [f"scales {', '.join(f'{s:g}' for s in self.scales)}"]
        if len(self.scales) > 1:
            parts.append("census fusion" + _kwargs(self.fusion))
        parts.append("no refinement" if self.refine is None else "variational refinement" + _kwargs(self.refine))
        return f"{self.name}: " + "; ".join(parts)


def _kwargs(d: Mapping[str, Any]) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in d.items())})" if d else ""


#: The original network alone.
PLAIN = Recipe(name="plain")


def resolve_recipe(recipe: "str | Mapping | Recipe | None", default: Recipe) -> Recipe:
    """``None`` or ``"default"`` -> ``default`` (the weights' own recipe); ``"plain"`` -> :data:`PLAIN`; a mapping ->
    :meth:`Recipe.from_dict`; a :class:`Recipe` as it is."""
    if recipe is None or recipe == "default":
        return default
    if recipe == "plain":
        return PLAIN
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return Recipe.from_dict(recipe)
    raise ValueError(f"recipe must be 'plain', 'default', a dict or a Recipe, got {recipe!r}")


