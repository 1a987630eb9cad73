"""Weights as data: checkpoint formats, key layouts, the bundled-weights registry.

Two kinds of checkpoint load into :class:`flowcli.model.LiteFlowNet`:

* the public PyTorch checkpoints of the original network (``network-default.pytorch``, ``-kitti``, ``-sintel``):
  a bare state dict whose keys are spelled ``moduleFeatures.moduleOne.0.weight`` (older port) or
  ``netFeatures.netOne.0.weight`` (newer port); 212 tensors, 5,381,969 numbers;
* the project's own format: ``{"format": "flowcli", "version": 1, "state_dict": {...}, "meta": {...}}`` where
  ``meta`` carries the name, training data, steps, preprocessing and measured metrics. Tensors may be fp16.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint is data, and one that needs code to
unpickle is refused.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .io.atomic import atomic_path
from .model import LiteFlowNet
from .model.levels import MEAN_IMAGE1, MEAN_IMAGE2

FORMAT = "flowcli"
FORMAT_VERSION = 1

#: Preprocessing of the original network (spec §1): what a public checkpoint expects.
ORIGINAL_PREPROCESSING = {
    "channel_order": "BGR",
    "scale": "1/255",
    "mean1": list(MEAN_IMAGE1),
    "mean2": list(MEAN_IMAGE2),
    "resize": "bilinear to multiples of 32, output upsampled bilinearly and rescaled per axis",
}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message is one line naming the file."""


# ---- key layouts -----------------------------------------------------------------------------------------------
_PYRAMID_NAMES = ["One", "Two", "Thr", "Fou", "Fiv", "Six"]
_PART_NAMES = {"Feat": "feat", "Upflow": "upflow", "Upcorr": "upcorr", "Main": "main", "Dist": "dist",
               "ScaleX": "scale_x", "ScaleY": "scale_y"}
_UNIT_NAMES = {"Matching": "matching", "Subpixel": "subpixel", "Regularization": "regularization"}
_PUBLIC_RE = re.compile(r"^(module|net)(Features|Matching|Subpixel|Regularization)\.(.*)$")


def public_to_internal(key: str) -> str:
    """``moduleMatching.0.moduleMain.6.weight`` or ``netMatching.0.netMain.6.weight`` -> ``matching.0.main.6.weight``."""
    m = _PUBLIC_RE.match(key)
    if not m:
        return key
    _, unit, rest = m.groups()
    if unit == "Features":
        level = re.match(r"^(?:module|net)(One|Two|Thr|Fou|Fiv|Six)\.(.*)$", rest)
        if not level:
            return key
        return f"features.levels.{_PYRAMID_NAMES.index(level.group(1))}.{level.group(2)}"
    parts = rest.split(".")
    parts = [_PART_NAMES.get(re.sub(r"^(module|net)", "", p), p) if re.match(r"^(module|net)[A-Z]", p) else p
             for p in parts]
    return f"{_UNIT_NAMES[unit]}." + ".".join(parts)


def internal_to_public(key: str, spelling: str = "module") -> str:
    """Inverse of :func:`public_to_internal`, in the ``module`` (default) or ``net`` spelling."""
    p = spelling
    m = re.match(r"^features\.levels\.(\d)\.(.*)$", key)
    if m:
        return f"{p}Features.{p}{_PYRAMID_NAMES[int(m.group(1))]}.{m.group(2)}"
    inv_units = {v: k for k, v in _UNIT_NAMES.items()}
    inv_parts = {v: k for k, v in _PART_NAMES.items()}
    parts = key.split(".")
    out = [f"{p}{inv_units[parts[0]]}", parts[1]]
    out += [f"{p}{inv_parts[x]}" if x in inv_parts else x for x in parts[2:]]
    return ".".join(out)


def _strip_wrappers(sd: Mapping[str, Any]) -> dict:
    # DataParallel/DDP save "module."-prefixed keys; strip that prefix only when every key has it
    keys = list(sd.keys())
    if keys and all(k.startswith("module.") for k in keys):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


# ---- reading ---------------------------------------------------------------------------------------------------
def _read(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: empty file, not a checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        text = " ".join(str(exc).split())
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise CheckpointError(f"{path}: refused: the checkpoint needs Python code to unpickle "
                                  f"(only plain tensors and containers are accepted)") from None
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {text[:160]}") from None


@dataclass
class Checkpoint:
    """A loaded checkpoint: internal-layout float32 state dict, metadata, and the kind it came from."""

    state_dict: dict
    meta: dict = field(default_factory=dict)
    kind: str = "flowcli"  # or "public"
    path: Optional[Path] = None

    @property
    def preprocessing(self) -> dict:
        return {**ORIGINAL_PREPROCESSING, **self.meta.get("preprocessing", {})}


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read either checkpoint kind from ``path`` into the internal key layout (float32). Raises
    :class:`CheckpointError` (one line naming the file) for anything unusable."""
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a state dict or a flowcli checkpoint, got {type(obj).__name__}")
    if obj.get("format") == FORMAT:
        sd, meta, kind = obj.get("state_dict"), dict(obj.get("meta") or {}), "flowcli"
        if not isinstance(sd, Mapping):
            raise CheckpointError(f"{path}: flowcli checkpoint without a state_dict")
    else:
        sd = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), Mapping) else obj
        meta, kind = {"name": path.stem, "source": "public LiteFlowNet checkpoint"}, "public"
    sd = _strip_wrappers(sd)
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries that are not tensors: {', '.join(map(str, bad[:3]))}")
    state = {public_to_internal(k): v.float() for k, v in sd.items()}
    return Checkpoint(state_dict=state, meta=meta, kind=kind, path=path)


def check_state_dict(state: Mapping[str, torch.Tensor], model: torch.nn.Module, *, source: str = "checkpoint") -> None:
    """Raise :class:`CheckpointError` naming the first few missing, unexpected or misshaped tensors."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} (expected {tuple(expected[k].shape)})"
              for k in expected if k in state and state[k].shape != expected[k].shape]
    problems = []
    for label, items in (("missing", missing), ("unexpected", extra), ("misshaped", shapes)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source}: not a LiteFlowNet checkpoint: " + "; ".join(problems))


def load_into(model: LiteFlowNet, ckpt: Checkpoint) -> LiteFlowNet:
    """Check and load ``ckpt`` into ``model``, and apply its preprocessing means."""
    check_state_dict(ckpt.state_dict, model, source=str(ckpt.path or "checkpoint"))
    model.load_state_dict(ckpt.state_dict)
    pre = ckpt.preprocessing
    model.set_means(pre["mean1"], pre["mean2"])
    return model


# ---- writing ---------------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any], *,
                    half: bool = False) -> Path:
    """Write a flowcli checkpoint atomically. ``meta`` must hold only plain values (str, numbers, lists, dicts)."""
    path = Path(path)
    sd = {k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()).contiguous()
          for k, v in state_dict.items()}
    meta = {"preprocessing": dict(ORIGINAL_PREPROCESSING), **dict(meta)}
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": FORMAT_VERSION, "state_dict": sd, "meta": meta}, tmp)
    return path


def convert_public_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, name: Optional[str] = None,
                              training_data: str = "unknown (public LiteFlowNet checkpoint)",
                              metrics: Optional[dict] = None) -> Path:
    """Convert a public checkpoint (either key spelling) into the project's format, checked against the network."""
    ckpt = read_checkpoint(src)
    check_state_dict(ckpt.state_dict, LiteFlowNet(), source=str(src))
    meta = {"name": name or Path(src).stem, "training_data": training_data, "steps": None,
            "source": f"converted from {Path(src).name}", "metrics": metrics or {}}
    return save_checkpoint(dst, ckpt.state_dict, meta)


# ---- bundled weights -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WeightsEntry:
    """A registry entry: the file and the card it is described by."""

    name: str
    filename: str
    card: str = "MODEL_CARD.md"


#: The weights shipped in ``weights/`` (trained by ``flowcli train``); the first entry is the default.
BUNDLED: tuple[WeightsEntry, ...] = (WeightsEntry(name="flowcli-synthetic", filename="flowcli-synthetic.pt"),)


def weights_dir() -> Path:
    """Where bundled weights live: ``$FLOWCLI_WEIGHTS_DIR``, else the ``weights/`` folder beside the package."""
    env = os.environ.get("FLOWCLI_WEIGHTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "weights"


def bundled_path(name: Optional[str] = None) -> Path:
    """Path of a bundled checkpoint (default: the first registry entry); a clear error when it is absent."""
    entry = BUNDLED[0] if name is None else next((e for e in BUNDLED if e.name == name), None)
    if entry is None:
        raise CheckpointError(f"unknown bundled weights {name!r}; known: {', '.join(e.name for e in BUNDLED)}")
    path = weights_dir() / entry.filename
    if not path.exists():
        raise CheckpointError(f"{path}: no bundled weights yet; pass weights=PATH (a public LiteFlowNet "
                              f"checkpoint or a flowcli checkpoint)")
    return path


def load_model(weights: Optional[str | os.PathLike] = None) -> tuple[LiteFlowNet, Checkpoint]:
    """A LiteFlowNet in eval mode with ``weights`` (a path to either kind, a bundled name, or None for the default
    bundled weights) loaded; returns (model, checkpoint)."""
    if weights is None or (isinstance(weights, str) and any(e.name == weights for e in BUNDLED)):
        path = bundled_path(weights)
    else:
        path = Path(weights)
    ckpt = read_checkpoint(path)
    model = load_into(LiteFlowNet(), ckpt)
    return model.eval(), ckpt
