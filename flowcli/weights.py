"""Weights as data: the registry of known checkpoints, checkpoint formats and key layouts, the network builder.

Every known checkpoint has a :class:`Weights` entry (after torchvision's ``Weights``): its file name and SHA-256, the
preprocessing it expects, its default inference recipe (:mod:`flowcli.recipe`), its measured metrics and its
documentation. :data:`REGISTRY` holds the bundled weights and the three public LiteFlowNet checkpoints.

Two kinds of checkpoint load into :class:`flowcli.model.LiteFlowNet`:

* the public PyTorch checkpoints of the original network (``network-default.pytorch``, ``-kitti``, ``-sintel``):
  a bare state dict whose keys are spelled ``moduleFeatures.moduleOne.0.weight`` (older port) or
  ``netFeatures.netOne.0.weight`` (newer port); 212 tensors, 5,381,969 numbers;
* the project's own format: ``{"format": "flowcli", "version": 1, "state_dict": {...}, "meta": {...}}`` where
  ``meta`` carries the name, training data, steps, preprocessing and measured metrics. Tensors may be fp16. It may
  also carry ``"weight_sets": {NAME: {...}}``: other weights for the same network, each stored as the tensors that
  differ from ``state_dict`` (e.g. coarse levels trained for large motions), which a recipe candidate names as
  ``net@S:NAME``; one file, one download.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint is data, and one that needs code to
unpickle is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping, Optional

import torch

from .errors import CheckpointError, MissingWeightsError
from .io.atomic import atomic_path
from .model import LiteFlowNet
from .model.levels import MEAN_IMAGE1, MEAN_IMAGE2
from .recipe import PLAIN, WEIGHT_SET_NAME, Recipe
from .resources import data_dir

FORMAT = "flowcli"
FORMAT_VERSION = 1
#: At most this many extra weight sets in one file.
MAX_WEIGHT_SETS = 4

#: Preprocessing of the original network (spec §1): what a public checkpoint expects.
ORIGINAL_PREPROCESSING = {
    "channel_order": "BGR",
    "scale": "1/255",
    "mean1": list(MEAN_IMAGE1),
    "mean2": list(MEAN_IMAGE2),
    "resize": "bilinear to multiples of 32, output upsampled bilinearly and rescaled per axis",
}


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
        raise CheckpointError(path, "empty file, not a checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - turned into one clear line
        text = " ".join(str(exc).split())
        if "weights_only" in text or "Unsupported global" in text or "GLOBAL" in text:
            raise CheckpointError(path, "refused: the checkpoint needs Python code to unpickle "
                                        "(only plain tensors and containers are accepted)") from None
        raise CheckpointError(path, f"not a readable checkpoint (truncated or corrupt?): {text[:160]}") from None


@dataclass
class Checkpoint:
    """A loaded checkpoint: internal-layout float32 state dict, metadata, the kind it came from, and its registry
    entry when it is a known checkpoint."""

    state_dict: dict
    meta: dict = field(default_factory=dict)
    kind: str = "flowcli"  # or "public"
    path: Optional[Path] = None
    entry: Optional["Weights"] = None
    #: other weights for the network, by name: each the tensors that differ from ``state_dict`` (internal layout)
    weight_sets: dict = field(default_factory=dict)

    def weight_set(self, name: str) -> dict:
        """The whole state dict of weight set ``name`` (``""``: the main weights); KeyError naming what there is."""
        if not name:
            return self.state_dict
        if name not in self.weight_sets:
            have = ", ".join(sorted(self.weight_sets)) or "none"
            raise KeyError(f"{self.name} carries no weight set {name!r} (it carries: {have})")
        return {**self.state_dict, **self.weight_sets[name]}

    @property
    def name(self) -> str:
        return str(self.meta.get("name") or (self.entry.name if self.entry else None)
                   or (self.path.stem if self.path else "weights"))

    @property
    def preprocessing(self) -> dict:
        base = self.entry.preprocessing if self.entry else ORIGINAL_PREPROCESSING
        return {**base, **self.meta.get("preprocessing", {})}

    @property
    def recipe(self) -> Recipe:
        """The default inference recipe: the checkpoint's own (``meta["recipe"]``), else its registry entry's, else
        the plain network."""
        if self.meta.get("recipe"):
            return Recipe.from_dict({**self.meta["recipe"], "name": "default"})
        return self.entry.recipe if self.entry else PLAIN

    @property
    def presets(self) -> dict[str, Recipe]:
        """The other named recipes these weights carry (``meta["recipes"]``, e.g. ``fast`` and ``quality``), else their
        registry entry's."""
        own = self.meta.get("recipes")
        if own:
            return {str(k): Recipe.from_dict({**v, "name": str(k)}) for k, v in own.items()}
        return dict(self.entry.presets) if self.entry else {}


# Metadata a flowcli checkpoint may carry that the loader reads, with its checks; the rest is description (name,
# training data, metrics) and only has to be plain, bounded data.
def _check_recipe(d: Any, what: str, weight_sets: Collection[str]) -> None:
    try:
        recipe = Recipe.from_dict(d)
    except ValueError as exc:
        raise ValueError(f"its {what}: {exc}") from None
    missing = [name for name in recipe.weight_sets if name not in weight_sets]
    if missing:
        raise ValueError(f"its {what} names the weight set {missing[0]!r}, which the file does not carry")


def _check_meta(meta: Mapping[str, Any], weight_sets: Collection[str] = frozenset()) -> None:
    """Raise ValueError for metadata that is not plain bounded data, or whose recipe, presets, levels or
    preprocessing are unusable (or name a weight set not in ``weight_sets``): all found when the weights are loaded,
    before any network runs."""
    from .recipe import PRESETS, bounded

    bounded(meta, max_values=200_000, what="metadata")
    if meta.get("recipe") is not None:
        _check_recipe(meta["recipe"], "recipe", weight_sets)
    presets = meta.get("recipes")
    if presets is not None:
        if not isinstance(presets, Mapping):
            raise ValueError(f"its recipes must be a mapping of named recipes, got {type(presets).__name__}")
        for key, value in presets.items():
            if key not in PRESETS or key in ("default", "plain"):
                raise ValueError(f"its recipes may be named fast or quality, got {key!r}")
            _check_recipe(value, f"{key} recipe", weight_sets)
    level = meta.get("finest_level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 2 <= level <= 6):
        raise ValueError(f"its finest_level must be an integer 2..6, got {level!r}")
    if not isinstance(meta.get("skip_finest_r", False), bool):
        raise ValueError(f"its skip_finest_r must be true or false, got {meta['skip_finest_r']!r}")
    pre = meta.get("preprocessing")
    if pre is not None:
        if not isinstance(pre, Mapping):
            raise ValueError(f"its preprocessing must be a mapping, got {type(pre).__name__}")
        for key in ("mean1", "mean2"):
            value = pre.get(key)
            if value is not None and not (isinstance(value, (list, tuple)) and len(value) == 3 and all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and -1e3 < float(v) < 1e3 for v in value)):
                raise ValueError(f"its preprocessing {key} must be three numbers, got {value!r}")


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read either checkpoint kind from ``path`` into the internal key layout (float32). Raises
    :class:`CheckpointError` (one line naming the file) for anything unusable."""
    path = Path(path)
    obj = _read(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"expected a state dict or a flowcli checkpoint, got {type(obj).__name__}")
    sets: Any = {}
    if obj.get("format") == FORMAT:
        sd, meta, kind = obj.get("state_dict"), obj.get("meta") or {}, "flowcli"
        sets = obj.get("weight_sets") or {}
        if not isinstance(sd, Mapping):
            raise CheckpointError(path, "flowcli checkpoint without a state_dict")
        if not isinstance(meta, Mapping):
            raise CheckpointError(path, f"its metadata must be a mapping, got {type(meta).__name__}")
        if not isinstance(sets, Mapping):
            raise CheckpointError(path, f"its weight_sets must be a mapping of named weights, got {type(sets).__name__}")
        try:
            _check_meta(meta, sets)
        except ValueError as exc:
            raise CheckpointError(path, str(exc)) from None
        meta = dict(meta)
    else:
        sd = obj.get("state_dict", obj) if isinstance(obj.get("state_dict"), Mapping) else obj
        meta, kind = {"name": path.stem, "source": "public LiteFlowNet checkpoint"}, "public"
    state = _tensors(path, _strip_wrappers(sd), "entries")
    return Checkpoint(state_dict=state, meta=meta, kind=kind, path=path, entry=find_entry(path, kind),
                      weight_sets=_weight_sets(path, sets, state))


def _tensors(path: Path, sd: Mapping[str, Any], what: str) -> dict:
    """The internal-layout float32 state dict of ``sd``; CheckpointError where an entry is not a tensor."""
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(path, f"{what} that are not tensors: {', '.join(map(str, bad[:3]))}")
    return {public_to_internal(str(k)): v.float() for k, v in sd.items()}


def _weight_sets(path: Path, sets: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> dict:
    """Check a file's extra weight sets against its main weights: valid names, at most :data:`MAX_WEIGHT_SETS`,
    each a non-empty mapping of tensors that the main weights hold with the same shapes."""
    if len(sets) > MAX_WEIGHT_SETS:
        raise CheckpointError(path, f"at most {MAX_WEIGHT_SETS} weight sets, got {len(sets)}")
    out = {}
    for name, sd in sets.items():
        if not isinstance(name, str) or not WEIGHT_SET_NAME.match(name):
            raise CheckpointError(path, f"weight set name {name!r}: lower-case letters, digits, '-' or '_' expected")
        if not isinstance(sd, Mapping) or not sd:
            raise CheckpointError(path, f"weight set {name!r} must be a non-empty mapping of tensors")
        tensors = _tensors(path, sd, f"weight set {name!r} holds entries")
        unknown = [k for k in tensors if k not in state]
        shapes = [f"{k} {tuple(v.shape)} (expected {tuple(state[k].shape)})" for k, v in tensors.items()
                  if k in state and v.shape != state[k].shape]
        if unknown or shapes:
            problem = f"tensors the network lacks: {', '.join(unknown[:3])}" if unknown else \
                f"misshaped tensors: {', '.join(shapes[:3])}"
            raise CheckpointError(path, f"weight set {name!r} holds {problem}")
        out[name] = tensors
    return out


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
        raise CheckpointError(source, "not a LiteFlowNet checkpoint: " + "; ".join(problems))


def load_into(model: LiteFlowNet, ckpt: Checkpoint) -> LiteFlowNet:
    """Check and load ``ckpt`` into ``model``, and apply its preprocessing means."""
    check_state_dict(ckpt.state_dict, model, source=str(ckpt.path or "checkpoint"))
    model.load_state_dict(ckpt.state_dict)
    pre = ckpt.preprocessing
    model.set_means(pre["mean1"], pre["mean2"])
    return model


# ---- writing ---------------------------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, state_dict: Mapping[str, torch.Tensor], meta: Mapping[str, Any], *,
                    half: bool = False, weight_sets: Optional[Mapping[str, Mapping[str, torch.Tensor]]] = None) -> Path:
    """Write a flowcli checkpoint atomically. ``meta`` must hold only plain values (str, numbers, lists, dicts);
    ``weight_sets``: other weights by name, each only the tensors that differ from ``state_dict``."""
    path = Path(path)

    def plain(sd: Mapping[str, torch.Tensor]) -> dict:
        return {k: _stored(v, half).contiguous() for k, v in sd.items()}

    meta = {"preprocessing": dict(ORIGINAL_PREPROCESSING), **dict(meta)}
    obj = {"format": FORMAT, "version": FORMAT_VERSION, "state_dict": plain(state_dict), "meta": meta}
    if weight_sets:
        obj["weight_sets"] = {name: plain(sd) for name, sd in weight_sets.items()}
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def weight_set_delta(main: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], *,
                     half: bool = False) -> dict:
    """The tensors of ``other`` that differ from ``main`` (as stored: compared in fp16 when ``half``), for
    :func:`save_checkpoint`'s ``weight_sets``: a set trained on some levels only costs only those levels."""
    if set(main) != set(other):
        raise ValueError("the two state dicts hold different tensors")
    return {k: v for k, v in other.items() if not torch.equal(_stored(v, half), _stored(main[k], half))}


def _stored(v: torch.Tensor, half: bool) -> torch.Tensor:
    """A tensor as a checkpoint stores it: on the CPU, floating point in fp16 where ``half``."""
    return v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu()


def convert_public_checkpoint(src: str | os.PathLike, dst: str | os.PathLike, *, name: Optional[str] = None,
                              training_data: str = "unknown (public LiteFlowNet checkpoint)",
                              metrics: Optional[dict] = None) -> Path:
    """Convert a public checkpoint (either key spelling) into the project's format, checked against the network."""
    ckpt = read_checkpoint(src)
    check_state_dict(ckpt.state_dict, LiteFlowNet(), source=str(src))
    meta = {"name": name or Path(src).stem, "training_data": training_data, "steps": None,
            "source": f"converted from {Path(src).name}", "metrics": metrics or {}}
    return save_checkpoint(dst, ckpt.state_dict, meta)


# ---- the registry ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Weights:
    """A known checkpoint: ``filename`` (its usual name) and ``sha256`` (None where the file is not available to
    hash), ``kind`` ("bundled": shipped in ``weights/``; "public": the original authors' files), the
    ``preprocessing`` it expects, its default inference ``recipe`` and ``presets`` (where the file carries none), its
    ``metrics`` (figures, or for bundled weights the names of JSON files of ``flowcli eval --json`` results beside
    them: ``real`` the tuning pairs, ``val`` the held-out ones, ``large`` the large-motion tuning pairs) and ``doc``
    (what it is; the card file of bundled weights)."""

    name: str
    filename: str
    kind: str
    sha256: Optional[str] = None
    preprocessing: Mapping[str, Any] = field(default_factory=lambda: dict(ORIGINAL_PREPROCESSING))
    recipe: Recipe = PLAIN
    presets: Mapping[str, Recipe] = field(default_factory=dict)
    metrics: Any = None
    doc: str = ""

    @property
    def path(self) -> Path:
        """Where a bundled file is (public files live wherever their user keeps them)."""
        return weights_dir() / self.filename

    def load_metrics(self) -> dict:
        """The metrics as data: figures as they are, with every value that names a JSON file (``flowcli eval --json``
        results kept beside bundled weights) replaced by the file's contents."""
        def load(value):
            if isinstance(value, str) and value.endswith(".json"):
                return json.loads((weights_dir() / value).read_text(encoding="utf-8"))
            return value

        return {k: load(v) for k, v in dict(self.metrics or {}).items()}


_PUBLIC_DOC = ("original LiteFlowNet weights (Hui, Tang, Loy, CVPR 2018), PyTorch port of the authors' Caffe models; "
               "not shipped with flowcli: pass the file with --weights / weights=")

#: Every known checkpoint; the first bundled entry is the default weights.
REGISTRY: tuple[Weights, ...] = (
    Weights(name="flowcli-synthetic", filename="flowcli-synthetic.pt", kind="bundled",
            sha256="509b275b98fd5610c404019e60f9cc7f42092ea932d132555081003beedfa654", doc="MODEL_CARD.md",
            metrics={"real": "flowcli-synthetic.real.json", "val": "flowcli-synthetic.val.json",
                     "large": "flowcli-synthetic.large.json"}),
    Weights(name="network-default", filename="network-default.pytorch", kind="public",
            metrics={"source": "paper (trained on FlyingChairs then FlyingThings3D)", "sintel_clean_train_aee": 2.48,
                     "sintel_final_train_aee": 4.04, "kitti2015_train_aee": 10.39, "kitti2015_train_fl_all": 0.285},
            doc=_PUBLIC_DOC),
    Weights(name="network-sintel", filename="network-sintel.pytorch", kind="public",
            metrics={"source": "paper (fine-tuned on Sintel)", "sintel_clean_test_aee": 4.54,
                     "sintel_final_test_aee": 5.38},
            doc=_PUBLIC_DOC),
    Weights(name="network-kitti", filename="network-kitti.pytorch", kind="public",
            metrics={"source": "paper (fine-tuned on KITTI)", "kitti2012_test_out_noc": 0.0327,
                     "kitti2015_test_fl_all": 0.0938},
            doc=_PUBLIC_DOC),
)


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_entry(path: str | os.PathLike, kind: str) -> Optional[Weights]:
    """The registry entry of a checkpoint file: by its hash where the entry records one, else a public-layout file by
    its name (``network-default.pytorch``, ...)."""
    p = Path(path)
    hashed = [e for e in REGISTRY if e.sha256]
    digest = file_sha256(p) if hashed and p.is_file() else None
    for e in hashed:
        if e.sha256 == digest:
            return e
    if kind == "public":
        return next((e for e in REGISTRY if e.kind == "public" and e.filename == p.name), None)
    return None


def bundled_entries() -> list[Weights]:
    return [e for e in REGISTRY if e.kind == "bundled"]


def weights_dir() -> Path:
    """Where bundled weights live: ``$FLOWCLI_WEIGHTS_DIR``, else the shipped ``weights`` folder
    (:func:`flowcli.resources.data_dir`)."""
    return data_dir("FLOWCLI_WEIGHTS_DIR", "weights")


def bundled_path(name: Optional[str] = None) -> Path:
    """Path of a bundled checkpoint (default: the first bundled entry); :class:`MissingWeightsError` when absent."""
    entries = bundled_entries()
    entry = entries[0] if name is None else next((e for e in entries if e.name == name), None)
    if entry is None:
        raise CheckpointError(str(name), f"unknown bundled weights; known: {', '.join(e.name for e in entries)}")
    if not entry.path.exists():
        raise MissingWeightsError(entry.path)
    return entry.path


def load_checkpoint(weights: "str | os.PathLike | Checkpoint | None" = None) -> Checkpoint:
    """A checkpoint from ``weights``: a path to either kind, a bundled name, a :class:`Checkpoint` as it is, or None
    for the default bundled weights."""
    if isinstance(weights, Checkpoint):
        return weights
    if weights is None or (isinstance(weights, str) and any(e.name == weights for e in bundled_entries())):
        return read_checkpoint(bundled_path(weights))
    return read_checkpoint(weights)


def liteflownet(*, weights: "str | os.PathLike | Checkpoint | None" = None, bundled: bool = False) -> LiteFlowNet:
    """A LiteFlowNet in eval mode: randomly initialised (``weights=None``), or with ``weights`` loaded (a path, a
    bundled name or a :class:`Checkpoint`); ``bundled=True`` loads the default bundled weights."""
    net = LiteFlowNet()
    if weights is None and not bundled:
        return net.eval()
    return load_into(net, load_checkpoint(weights)).eval()
