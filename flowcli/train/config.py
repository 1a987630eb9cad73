"""Training configuration: a small TOML or JSON file, read into :class:`TrainConfig`.

Example (TOML)::

    seed = 0
    data = "synthetic"          # or chairs, things, sintel, kitti2015, ... with data_root
    crop = [192, 256]           # H, W
    batch = 8
    checkpoint_every = 100
    [[stages]]                  # levels are added coarse to fine (spec §6.3)
    finest_level = 6
    skip_finest_r = true
    steps = 2000
    lr = 1e-4
    milestones = [1200, 1600]
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Optional


# "auto": bf16 where the device computes it natively (flowcli.runtime.native_bf16), else fp32 -- a recipe that runs on
# several machines; "bf16" means bf16 everywhere (emulated bf16 on a CPU without AVX512-BF16/AMX is ~20x slower)
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass
class Stage:
    finest_level: int
    steps: int
    lr: float = 1e-4
    milestones: list[int] = field(default_factory=list)  # steps (within the stage) where lr halves
    skip_finest_r: bool = False
    crop: Optional[list[int]] = None  # overrides the run's crop for this stage
    batch: Optional[int] = None
    copy_from_coarser: bool = True  # initialise the new level from the next coarser one where shapes agree
    # per-stage overrides of the run's data and loss settings (None = the run's value); a fine-tuning stage uses
    # them, e.g. the spec §6.1 fine-tuning loss (charbonnier_q = 0.2) on more natural textures
    motion_scale: Optional[list[float]] = None
    photo_textures: Optional[float] = None
    charbonnier_eps: Optional[float] = None
    charbonnier_q: Optional[float] = None
    static_share: Optional[float] = None
    large_motion_share: Optional[float] = None
    large_motion_range: Optional[list[float]] = None
    # NetC's convolutions of pyramid levels 1..N keep their weights: a stage that trains only the coarse levels on
    # new motions then leaves the features that the finer levels (N and below) read exactly as they were
    fixed_pyramid_levels: int = 0
    # the stage's budget: the run stops once the synthetic validation AEE in the band of true motion `patience_band`
    # (a key of flowcli.metrics.magnitude_bin_labels) has not improved for `patience` steps, or once the stage has
    # trained for `max_hours` of wall time in all (summed over resumes)
    patience: Optional[int] = None
    patience_band: str = "30-100"
    max_hours: Optional[float] = None


STAGE_OVERRIDES = ("motion_scale", "photo_textures", "charbonnier_eps", "charbonnier_q", "static_share",
                   "large_motion_share", "large_motion_range")


@dataclass
class TrainConfig:
    stages: list[Stage]
    seed: int = 0
    data: str = "synthetic"
    data_root: Optional[str] = None
    data_split: Optional[str] = None
    data_length: Optional[int] = None  # cap the synthetic set (a small fixed set, e.g. to overfit in tests)
    # synthetic motions are multiplied per sample by a log-uniform factor in [lo, hi]: real footage is dominated
    # by small motions, and a generator that always moves everything teaches a prior of large flow
    motion_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    # share of synthetic textures cut from photographs (scikit-image's sample photos: the `train` extra); 0 = noise
    # textures only. The validation set stays procedural, so its EPE stays comparable along a run.
    photo_textures: float = 0.0
    # share of rigid samples: frame 2 is frame 1 itself, so the only motion is the augmentation's small transform of
    # image 2 (scaled down, see flowcli.train.data.STATIC_RELATIVE): a whole frame under one sub-pixel to ~2 px
    # affine motion, the case where real footage needs the precision the synthetic scenes rarely ask for
    static_share: float = 0.0
    # share of synthetic layers (the background too) moved by a large translation, log-uniform in large_motion_range
    # pixels (flowcli.data.synthetic.render_pair): the heavy tail of FlyingChairs' motions
    large_motion_share: float = 0.0
    large_motion_range: list[float] = field(default_factory=lambda: [30.0, 150.0])
    crop: list[int] = field(default_factory=lambda: [192, 256])
    batch: int = 8
    weight_decay: float = 4e-4
    charbonnier_eps: float = 0.01
    charbonnier_q: float = 0.5
    augment_strength: float = 1.0
    checkpoint_every: int = 100
    keep_every: int = 1000
    log_every: int = 10
    validate_every: int = 500
    validate_pairs: int = 32
    threads: Optional[int] = None
    workers: int = 1  # DataLoader processes rendering/augmenting batches while the network trains
    init: Optional[str] = None  # weights to start from (either checkpoint kind)
    # exported weights are a moving average of the trained ones with this decay (0 = off); see WeightAverage
    ema_decay: float = 0.0
    # "bf16": forward pass under bfloat16 autocast (weights, optimizer and loss stay fp32). About 1.6-1.9x faster
    # per step on CPUs with AVX512-BF16/AMX and on recent GPUs; far slower on CPUs without native bf16, which is
    # what "auto" avoids (bf16 where native, else fp32).
    precision: str = "fp32"

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    def with_cuts(self, cuts: dict[int, int]) -> "TrainConfig":
        """The schedule as a run lived it: stage ``i`` lasted ``cuts[i]`` steps where its budget ended it early (the
        later stages follow at once)."""
        if not cuts:
            return self
        stages = [replace(s, steps=int(cuts[i])) if i in cuts else s for i, s in enumerate(self.stages)]
        return replace(self, stages=stages)

    def stage_at(self, step: int) -> tuple[int, Stage, int]:
        """(stage index, stage, step within the stage) for a global step; past the end, the last stage."""
        start = 0
        for i, s in enumerate(self.stages):
            if step < start + s.steps:
                return i, s, step - start
            start += s.steps
        return len(self.stages) - 1, self.stages[-1], self.stages[-1].steps

    def setting(self, stage: Stage, name: str):
        """A data/loss setting as it applies in ``stage``: the stage's override, else the run's value."""
        if name not in STAGE_OVERRIDES:
            raise KeyError(f"{name!r} is not a per-stage setting (those are {', '.join(STAGE_OVERRIDES)})")
        value = getattr(stage, name)
        return getattr(self, name) if value is None else value

    @property
    def uses_photos(self) -> bool:
        return self.data == "synthetic" and any(self.setting(s, "photo_textures") > 0 for s in self.stages)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        d = dict(d)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(unknown)}")
        if not d.get("stages"):
            raise ValueError("a training config needs at least one [[stages]] entry")
        stages = []
        for i, s in enumerate(d.pop("stages")):
            bad = sorted(set(s) - set(Stage.__dataclass_fields__))
            if bad:
                raise ValueError(f"stage {i}: unknown setting(s): {', '.join(bad)}")
            stage = Stage(**s)
            if not 2 <= stage.finest_level <= 6:
                raise ValueError(f"stage {i}: finest_level must be 2..6, got {stage.finest_level}")
            _check_budget(stage, f"stage {i}: ")
            _check_data_loss(vars(stage), f"stage {i}: ")
            stages.append(stage)
        _check_data_loss(d, "")
        for name, least in (("batch", 1), ("checkpoint_every", 1), ("log_every", 1), ("keep_every", 0),
                            ("validate_every", 0), ("validate_pairs", 0), ("workers", 0)):
            if name in d and not (isinstance(d[name], int) and d[name] >= least):
                raise ValueError(f"{name} must be an integer >= {least}, got {d[name]!r}")
        if not 0.0 <= float(d.get("ema_decay", 0.0)) < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {d['ema_decay']}")
        if d.get("precision", "fp32") not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {d['precision']!r}")
        return cls(stages=stages, **d)


def _check_data_loss(d: dict, where: str) -> None:
    """Range checks of the settings a stage may override (absent/None ones are skipped)."""
    for name in ("photo_textures", "static_share", "large_motion_share"):
        if d.get(name) is not None and not 0.0 <= float(d[name]) <= 1.0:
            raise ValueError(f"{where}{name} must be in [0, 1], got {d[name]}")
    ms = d.get("motion_scale")
    if ms is not None and not (len(ms) == 2 and 0 < float(ms[0]) <= float(ms[1])):
        raise ValueError(f"{where}motion_scale must be [lo, hi] with 0 < lo <= hi, got {ms}")
    lr = d.get("large_motion_range")
    if lr is not None and not (len(lr) == 2 and 0 < float(lr[0]) <= float(lr[1])):
        raise ValueError(f"{where}large_motion_range must be [lo, hi] px with 0 < lo <= hi, got {lr}")
    if d.get("charbonnier_eps") is not None and not float(d["charbonnier_eps"]) > 0:
        raise ValueError(f"{where}charbonnier_eps must be > 0, got {d['charbonnier_eps']}")
    if d.get("charbonnier_q") is not None and not 0 < float(d["charbonnier_q"]) <= 1:
        raise ValueError(f"{where}charbonnier_q must be in (0, 1], got {d['charbonnier_q']}")


def _check_budget(stage: Stage, where: str) -> None:
    from ..metrics import magnitude_bin_labels

    if not 0 <= stage.fixed_pyramid_levels <= 6:
        raise ValueError(f"{where}fixed_pyramid_levels must be 0..6, got {stage.fixed_pyramid_levels}")
    if stage.patience is not None and stage.patience < 1:
        raise ValueError(f"{where}patience must be a number of steps >= 1, got {stage.patience}")
    try:
        band_members(stage.patience_band)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None
    if stage.max_hours is not None and not stage.max_hours > 0:
        raise ValueError(f"{where}max_hours must be > 0, got {stage.max_hours}")


def band_members(band: str) -> list[str]:
    """The bands of :func:`flowcli.metrics.magnitude_bin_labels` that ``band`` covers: a band itself ("30-100") or a
    run of consecutive ones written from the first's lower edge to the last's upper edge ("0-3" = "0-1" + "1-3")."""
    from ..metrics import magnitude_bin_labels

    labels = magnitude_bin_labels()
    if band in labels:
        return [band]
    lo, _, hi = band.partition("-")
    starts = [i for i, b in enumerate(labels) if b.split("-")[0].rstrip("+") == lo]
    ends = [i for i, b in enumerate(labels) if "-" in b and b.split("-")[1] == hi]
    if hi and starts and ends and starts[0] <= ends[0]:
        return labels[starts[0]:ends[0] + 1]
    raise ValueError(f"patience_band must be one of {', '.join(labels)} or a run of them such as "
                     f"{labels[0].split('-')[0]}-{labels[1].split('-')[1]}, got {band!r}")


# Run settings that belong to the machine a run lands on, not to the recipe: a run may resume with other values.
MACHINE_SETTINGS = ("workers", "threads", "checkpoint_every", "keep_every", "log_every", "init")


def config_difference(saved: dict, config: TrainConfig, entered: int) -> Optional[str]:
    """Why a run state written under the config ``saved`` (a dict) cannot resume under ``config``: one line naming the
    first setting that differs, or None. Stages after ``entered`` (the last stage the run has trained) have not run
    yet, so they may change or be added; the machine settings (:data:`MACHINE_SETTINGS`) may always change."""
    now = config.to_dict()
    for key in sorted((set(saved) | set(now)) - {"stages", *MACHINE_SETTINGS}):
        if saved.get(key) != now.get(key):
            return f"run setting {key} differs ({saved.get(key)!r} in the run, {now.get(key)!r} in the config)"
    old, new = saved.get("stages", []), now["stages"]
    for i in range(min(entered + 1, len(old))):
        if i >= len(new):
            return f"stage {i} has trained but the config has only {len(new)} stage(s)"
        for key in sorted(set(old[i]) | set(new[i])):
            if old[i].get(key) != new[i].get(key):
                return (f"stage {i} differs: {key} is {old[i].get(key)!r} in the run and {new[i].get(key)!r} in the "
                        "config")
    return None


def apply_overrides(config: TrainConfig, assignments: list[str] | tuple[str, ...]) -> TrainConfig:
    """``config`` with run settings replaced by ``KEY=VALUE`` assignments (VALUE in TOML syntax; a bare word is a
    string), checked like a config file's. Stages are the recipe and cannot be overridden here. Meant for the machine a
    run lands on: ``workers=14`` and ``checkpoint_every=1000`` on a GPU, ``init='weights/other.pt'``."""
    if not assignments:
        return config
    d = config.to_dict()
    for text in assignments:
        key, sep, raw = text.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ValueError(f"override {text!r} is not KEY=VALUE")
        if key == "stages" or key not in TrainConfig.__dataclass_fields__:
            raise ValueError(f"override {text!r}: {key!r} is not a run setting one can override")
        d[key] = _parse_value(raw)
    return TrainConfig.from_dict(d)


def _parse_value(raw: str):
    """A TOML value (JSON on Python 3.10, which has no tomllib); anything else is the bare string itself."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw  # a bare word: a path, a dataset name


def default_run_dir(config_path: str | Path) -> Path:
    """Where ``flowcli train CONFIG`` keeps its run when no RUN_DIR is given: the user's cache folder
    (``$XDG_CACHE_HOME``, else ``~/.cache``), ``flowcli/runs/<config file name without suffix>``. A checkout of the
    project may be laid anew at any time; a run of many hours outlives it there."""
    import os

    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "flowcli" / "runs" / Path(config_path).stem


def load_config(path: str | Path) -> TrainConfig:
    """Read a TOML (``.toml``) or JSON training config; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such training config")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise ValueError("TOML configs need Python 3.11+; use a .json config") from None
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
        return TrainConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: {' '.join(str(exc).split())}") from None
