"""The training loop: stage-wise schedule, Adam as in Caffe, checkpoints with exact resume, JSONL metrics,
and DistributedDataParallel when started under ``torchrun``."""
from __future__ import annotations

import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist

import torch.nn.functional as F

from ..distributed import World, any_rank, init_process_group, timeout_seconds
from ..io.atomic import atomic_path
from ..metrics import MetricAccumulator
from ..model import LiteFlowNet, build_liteflownet
from ..runtime import native_bf16, retain_freed_memory
from ..weights import read_checkpoint, save_checkpoint, load_into
from .config import Stage, TrainConfig, band_members, config_difference
from .data import BatchStream, validation_batches
from .loss import endpoint_error, multiscale_loss

RUN_STATE = "last.pt"
METRICS = "metrics.jsonl"


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """The precision a run trains in on ``device``: "auto" becomes "bf16" where the device computes bf16 natively
    and "fp32" elsewhere; "fp32" and "bf16" stay as asked (an explicit "bf16" on emulating hardware warns)."""
    native = native_bf16(device)
    if precision == "auto":
        return "bf16" if native else "fp32"
    if precision == "bf16" and not native:
        warnings.warn(f"precision = \"bf16\" on {device}, which has no native bfloat16 (no AVX512-BF16/AMX): it is "
                      "emulated and far slower than fp32; precision = \"auto\" would train in fp32 here",
                      RuntimeWarning, stacklevel=2)
    return precision


def is_fixed(name: str) -> bool:
    """Tensors that Caffe keeps fixed (lr_mult 0, spec §6.2): bilinear deconvolutions, the R unit's scale convs and
    the bias of its distance convs."""
    return (".upflow." in name or ".upcorr." in name or ".scale_x." in name or ".scale_y." in name
            or (".dist." in name and name.endswith(".bias")))


def unit_level(name: str) -> Optional[tuple[int, str]]:
    """(level, unit) of a NetE parameter name, or None for NetC."""
    parts = name.split(".")
    if parts[0] in ("matching", "subpixel", "regularization"):
        return int(parts[1]) + 2, parts[0][0].upper()
    return None


def set_trainable(model: LiteFlowNet, stage: Stage) -> None:
    """Only the units the stage runs (levels >= finest_level, minus R at the finest level when skipped) learn, and
    NetC's convolutions of pyramid levels 1..``fixed_pyramid_levels`` keep their weights."""
    fixed_features = tuple(f"features.levels.{i}." for i in range(stage.fixed_pyramid_levels))
    for name, p in model.named_parameters():
        lu = unit_level(name)
        active = not name.startswith(fixed_features)
        if lu is not None:
            level, unit = lu
            active = level >= stage.finest_level and not (stage.skip_finest_r and level == stage.finest_level and unit == "R")
        p.requires_grad_(active and not is_fixed(name))


def copy_from_coarser(model: LiteFlowNet, level: int) -> int:
    """Initialise level ``level``'s units from level ``level + 1`` wherever tensor shapes agree (as [MM] does when
    a level is added); returns how many tensors were copied."""
    sd = model.state_dict()
    copied = 0
    with torch.no_grad():
        for unit in ("matching", "subpixel", "regularization"):
            dst_prefix, src_prefix = f"{unit}.{level - 2}.", f"{unit}.{level - 1}."
            for key, value in sd.items():
                if key.startswith(dst_prefix) and not is_fixed(key):
                    src = src_prefix + key[len(dst_prefix):]
                    if src in sd and sd[src].shape == value.shape:
                        value.copy_(sd[src])
                        copied += 1
    return copied


def make_optimizer(model: torch.nn.Module, stage: Stage, weight_decay: float) -> torch.optim.Adam:
    """Adam (beta 0.9/0.999, eps 1e-8); L2 decay added to the gradient of weights, not biases (spec §6.2)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith(".bias") else decay).append(p)
    return torch.optim.Adam([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=stage.lr, betas=(0.9, 0.999), eps=1e-8)


def stage_lr(stage: Stage, step_in_stage: int) -> float:
    return stage.lr * 0.5 ** sum(1 for m in stage.milestones if step_in_stage >= m)


def _train_device(world: World, requested: str) -> torch.device:
    """The rank's device (:meth:`flowcli.distributed.World.device`), ``auto`` resolved."""
    name = world.device(requested)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _save_run(path: Path, model: LiteFlowNet, opt, step: int, stage_index: int, config: TrainConfig,
              ema: Optional["WeightAverage"] = None, budget: Optional[StageBudget] = None,
              ended: Optional[dict] = None) -> None:
    """``config`` is the schedule as written; ``ended`` maps the stages whose budget ended them early to
    ``{"steps": steps trained, "why": the rule}`` (the schedule as lived is ``config.with_cuts``)."""
    state = {"format": "flowcli-run", "version": 1, "step": step, "stage": stage_index,
             "model": model.state_dict(), "optimizer": opt.state_dict(), "config": config.to_dict(),
             "ended": {str(i): dict(e) for i, e in (ended or {}).items()}}
    if budget is not None:
        state["budget"] = budget.state_dict()
    if ema is not None:
        state["ema"] = ema.state_dict()
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _trim_metrics(path: Path, step: int) -> None:
    """Drop the records of steps after ``step`` from the metrics log.

    A run killed between checkpoints has logged steps that its resume runs again; without the trim the log would
    hold those steps twice (identical records, since resume is exact) and plots would fold back."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            later = int(json.loads(line)["step"]) > step
        except (ValueError, KeyError, TypeError):
            later = True  # a record cut short by the kill
        if not later:
            keep.append(line)
    if len(keep) != len(lines):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(keep))


def _agreed(flag: bool, world: World, dev: torch.device) -> bool:
    """True when any rank says so: a stop decided by one rank's clock must stop every replica at the same step."""
    return any_rank(flag) if world.enabled else bool(flag)


class WeightAverage:
    """An exponential moving average of the network's floating-point tensors: the weights that get exported.

    Snapshots of a run taken a few hundred steps apart differ by several tenths of a pixel on real footage (Adam's
    steps keep the weights moving); their running average is steadier and usually better. The decay ramps up as
    ``min(decay, (1 + n) / (10 + n))`` over the ``n`` updates since the average was (re)started, so that it soon
    forgets where it began. It restarts where a stage adds a level, so it never mixes networks with different active
    levels, and goes on across stages that train the same levels.

    ``warm=True`` skips the ramp: the average starts from weights worth keeping (a run continued from committed
    weights, which are themselves an average) and moves away from them at the full decay, so the exported weights
    do not follow the raw ones through the transient of a fresh optimizer."""

    def __init__(self, model: torch.nn.Module, decay: float, *, state: Optional[dict] = None,
                 warm: bool = False) -> None:
        self.decay = decay
        if state is not None:
            self.tensors, self.updates = dict(state["tensors"]), int(state["updates"])
            self.warm = bool(state.get("warm", False))  # states written before the option are ramped ones
        else:
            self.tensors = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
            self.updates, self.warm = 0, warm

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.decay if self.warm else min(self.decay, (1 + self.updates) / (10 + self.updates))
        current = model.state_dict()
        keys = list(self.tensors)
        torch._foreach_lerp_([self.tensors[k] for k in keys], [current[k].detach() for k in keys], 1.0 - d)
        self.updates += 1

    def state_dict(self) -> dict:
        return {"tensors": self.tensors, "updates": self.updates, "warm": self.warm}


def _stage_average(model: torch.nn.Module, config: TrainConfig, running: Optional[WeightAverage],
                   saved: Optional[dict], *, resumed: bool, from_init: bool, carry: bool, carry_saved: bool,
                   warm_start: bool) -> Optional[WeightAverage]:
    """The weight average for a stage being entered: off; the saved one (resumed inside the stage, or carried over
    from the stage before when it trained the same levels); the running one (carried over); or a new one, restarted
    where a level is added or the average is turned on, warm when a run continues from init weights (see
    :class:`WeightAverage`)."""
    if config.ema_decay <= 0:
        return None
    if saved is not None and (resumed or (carry and carry_saved)):
        return WeightAverage(model, config.ema_decay, state=saved)
    if carry and running is not None:
        return running
    return WeightAverage(model, config.ema_decay, warm=from_init and warm_start)


def band_aee(bands: dict, band: str) -> Optional[float]:
    """The AEE of ``band`` (one band, or a run of them such as "0-3", pooled by pixels) from a ``by_magnitude``
    summary; None where it holds no pixels."""
    members = band_members(band)
    if len(members) == 1:
        return (bands.get(band) or {}).get("aee")
    parts = [bands.get(m) or {} for m in members]
    n = sum(p.get("pixels") or 0 for p in parts)
    if not n:
        return None
    return sum((p.get("pixels") or 0) * (p.get("aee") or 0.0) for p in parts) / n


@dataclass
class StageBudget:
    """Where the current stage stands against its budget (:class:`Stage` ``patience``/``max_hours``); kept in the run
    state so that it survives resumes. ``finished`` names the rule that ended the stage."""

    stage: int = -1
    seconds: float = 0.0
    best: Optional[float] = None
    best_step: int = 0
    finished: Optional[str] = None

    def enter(self, index: int, step: int) -> None:
        if index != self.stage:
            self.stage, self.seconds, self.best, self.best_step, self.finished = index, 0.0, None, step, None

    def observe(self, stage: Stage, step: int, bands: dict) -> None:
        """Take a validation's AEE per band; finish the stage when its band has not improved for ``patience``."""
        value = band_aee(bands, stage.patience_band)
        if value is not None and (self.best is None or value < self.best):
            self.best, self.best_step = float(value), step
        if stage.patience is not None and step - self.best_step >= stage.patience:
            self.finished = (f"the {stage.patience_band} px band has not improved for {step - self.best_step} steps "
                             f"(best {self.best} at step {self.best_step})")

    def tick(self, stage: Stage, seconds: float) -> None:
        self.seconds += seconds
        if stage.max_hours is not None and self.seconds >= stage.max_hours * 3600 and self.finished is None:
            self.finished = f"the stage trained for {self.seconds / 3600:.2f} h (budget {stage.max_hours:g} h)"

    def state_dict(self) -> dict:
        return {"stage": self.stage, "seconds": self.seconds, "best": self.best, "best_step": self.best_step,
                "finished": self.finished}


@dataclass
class TrainResult:
    last: dict  # the last log record
    model: LiteFlowNet  # the trained network (on its device)


class ConfigMismatchError(ValueError):
    """A run folder whose state was written under another config (:func:`flowcli.train.config.config_difference`)."""


def _check_same_config(state: dict, config: TrainConfig, run_dir: Path) -> None:
    why = config_difference(state["config"], config, int(state["stage"]))
    if why:
        raise ConfigMismatchError(f"{run_dir} holds a run of another config: {why}; use another run folder "
                                  "or the config the run began with")


def check_run_dir(config: TrainConfig, run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a run that ``config`` resumes (False: none yet); raises :class:`ConfigMismatchError`
    where it holds a run of another config."""
    path = Path(run_dir) / RUN_STATE
    if not path.exists():
        return False
    _check_same_config(torch.load(path, map_location="cpu", weights_only=True), config, Path(run_dir))
    return True


class _Run:
    """One call of :func:`train`: the network, optimizer, weight average and budget, and the run folder's state.
    ``config`` is the schedule as written, ``schedule`` the schedule as lived (stages that a budget ended early cut to
    the steps they trained)."""

    def __init__(self, config: TrainConfig, run_dir: Path, world: World, dev: torch.device) -> None:
        self.config, self.run_dir, self.world, self.dev = config, run_dir, world, dev
        self.main = world.rank == 0
        self.state_path = run_dir / RUN_STATE
        self.model = build_liteflownet()
        self.start, self.saved_opt, self.saved_stage, self.saved_ema, self.from_init = 0, None, -1, None, False
        self.budget = StageBudget()
        self.ended: dict[int, dict] = {}
        if self.state_path.exists():
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
            _check_same_config(state, config, run_dir)
            self.model.load_state_dict(state["model"])
            self.start, self.saved_opt, self.saved_stage = int(state["step"]), state["optimizer"], int(state["stage"])
            self.saved_ema = state.get("ema")
            self.budget = StageBudget(**state["budget"]) if state.get("budget") else self.budget
            self.ended = {int(i): dict(e) for i, e in (state.get("ended") or {}).items()}
        elif config.init:
            ckpt = read_checkpoint(config.init)
            load_into(self.model, ckpt)
            self.start, self.from_init = int(ckpt.meta.get("train_step") or 0), True
        self.model.to(dev).train()
        if self.main and self.state_path.exists():
            _trim_metrics(run_dir / METRICS, self.start)
        self.stage_index, self.net, self.opt, self.ema = -1, self.model, None, None
        self.vals: dict[int, list] = {}  # validation sets per stage (each stage's own data)

    @property
    def schedule(self) -> TrainConfig:
        return self.config.with_cuts({i: e["steps"] for i, e in self.ended.items()})

    def end_stage_early(self, idx: int, done: int) -> bool:
        """The budget ended stage ``idx`` at step ``done``: where a stage follows, cut this one there (the next
        stage starts at ``done``) and return True; the last stage ends the run (False)."""
        if idx + 1 >= len(self.config.stages):
            return False
        stage_start = sum(s.steps for s in self.schedule.stages[:idx])
        self.ended[idx] = {"steps": done - stage_start, "why": self.budget.finished}
        return True

    def enter(self, idx: int, stage: Stage, in_stage: int, step: int) -> None:
        """Entering a stage (fresh, or resumed in the middle of one): trainable units, optimizer, weight average."""
        config, model = self.schedule, self.model
        same_levels = idx > 0 and stage.finest_level == config.stages[idx - 1].finest_level
        self.stage_index = idx
        self.budget.enter(idx, step)
        set_trainable(model, stage)
        if in_stage == 0 and idx > 0 and stage.copy_from_coarser and stage.finest_level < config.stages[idx - 1].finest_level:
            copy_from_coarser(model, stage.finest_level)
        self.net = model
        if self.world.enabled:
            self.net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.dev.index] if self.dev.type == "cuda" else None)
        self.opt = make_optimizer(model, stage, config.weight_decay)
        resumed = self.saved_stage == idx and in_stage > 0
        if self.saved_opt is not None and resumed:
            self.opt.load_state_dict(self.saved_opt)
        self.ema = _stage_average(model, config, self.ema, self.saved_ema, resumed=resumed, from_init=self.from_init,
                                  carry=same_levels and in_stage == 0, carry_saved=self.saved_stage == idx - 1,
                                  warm_start=in_stage > 0 or same_levels)
        self.saved_opt, self.saved_ema = None, None

    def step(self, batch: dict, stage: Stage, lr: float, precision: str):
        """One optimizer step; returns (loss, outputs, flow, valid)."""
        dev = self.dev
        for group in self.opt.param_groups:
            group["lr"] = lr
        img1, img2 = batch["img1"].to(dev, non_blocking=True), batch["img2"].to(dev, non_blocking=True)
        flow, valid = batch["flow"].to(dev, non_blocking=True), batch["valid"].to(dev, non_blocking=True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            outputs = self.net(img1, img2, finest_level=stage.finest_level, skip_finest_r=stage.skip_finest_r,
                               return_all=True)
        loss = multiscale_loss(outputs, flow, valid, eps=self.config.setting(stage, "charbonnier_eps"),
                               q=self.config.setting(stage, "charbonnier_q"))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss, outputs, flow, valid

    def validate(self, idx: int, stage: Stage, done: int) -> dict:
        if idx not in self.vals:
            self.vals[idx] = validation_batches(self.config, stage)
        val = validate(self.model, self.vals[idx], stage)
        self.model.train()
        self.budget.observe(stage, done, val["by_magnitude"])
        return val

    def save(self, done: int, idx: int) -> None:
        _save_run(self.state_path, self.model, self.opt, done, idx, self.config, self.ema, self.budget, self.ended)
        if self.config.keep_every and done % self.config.keep_every == 0:
            _save_run(self.run_dir / f"step_{done:07d}.pt", self.model, self.opt, done, idx, self.config, self.ema,
                      self.budget, self.ended)


def train(config: TrainConfig, run_dir: str | Path, *, device: str = "auto", max_steps: Optional[int] = None,
          on_log: Optional[Callable[[dict], None]] = None, stop: Optional[Callable[[], bool]] = None,
          time_limit: Optional[float] = None) -> TrainResult:
    """Run (or resume) training in ``run_dir`` until the schedule ends, ``max_steps`` more steps ran, ``time_limit``
    seconds passed since the call, the last stage's budget ends it, or ``stop()`` says so (the state is saved then).
    A budget that ends an earlier stage moves the run on to the next stage at once.
    Resuming from ``run_dir/last.pt`` reproduces the uninterrupted run: samples are a pure function of (seed, index)
    and the optimizer state is restored. A run folder written under another config is refused
    (:class:`ConfigMismatchError`) before any step."""
    t_called = time.time()
    run_dir = Path(run_dir)
    retain_freed_memory()  # every step allocates the same activations again (see flowcli.runtime)
    world = World.from_env()
    dev = _train_device(world, device)
    # collectives wait for rank 0's validation and checkpoints: torch's own timeout unless FLOWCLI_DIST_TIMEOUT says
    init_process_group(world, dev, timeout=timeout_seconds(default=None))
    precision = resolve_precision(config.precision, dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one crop size per stage: the autotuned kernels are reused every step
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    if world.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
    run = _Run(config, run_dir, world, dev)
    limit = None if max_steps is None else run.start + max_steps
    budget = run.budget
    record: dict = {"step": run.start}
    while True:
        schedule = run.schedule
        start = run.start
        end = schedule.total_steps if limit is None else min(schedule.total_steps, limit)
        if budget.finished is not None and budget.stage == schedule.stage_at(start)[0]:
            end = start  # the last stage's budget ended the run; its state is final
            record = {"step": start, "stopped": budget.finished}
        record, moved_on = _train_steps(run, schedule, start, end, precision, record, on_log, stop, time_limit,
                                        t_called)
        if not moved_on:
            break
    if world.enabled:
        dist.barrier()
    return TrainResult(last=record, model=run.model)


def _train_steps(run: _Run, schedule: TrainConfig, start: int, end: int, precision: str, record: dict, on_log,
                 stop, time_limit, t_called) -> tuple[dict, bool]:
    """Steps ``start`` to ``end`` of ``schedule``; returns (the last log record, whether a stage's budget ended that
    stage and the run moves on to the next one)."""
    world, dev, budget, run_dir = run.world, run.dev, run.budget, run.run_dir
    clock = {"t": time.time(), "steps": 0}
    stream = iter(torch.utils.data.DataLoader(BatchStream(schedule, start_step=start, rank=world.rank,
                                                          world=world.size),
                                              batch_size=None, num_workers=schedule.workers,
                                              pin_memory=dev.type == "cuda"))  # so non_blocking copies overlap
    for step in range(start, end):
        t_step = time.time()
        idx, stage, in_stage = schedule.stage_at(step)
        if idx != run.stage_index:
            run.enter(idx, stage, in_stage, step)
        loss, outputs, flow, valid = run.step(next(stream), stage, stage_lr(stage, in_stage), precision)
        clock["steps"] += 1
        done = step + 1
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss became {loss.item()} at step {done}")
        budget.tick(stage, time.time() - t_step)
        logging = run.main and (done % schedule.log_every == 0 or done == end)
        validating = run.main and schedule.validate_every and (done % schedule.validate_every == 0 or done == end)
        val = run.validate(idx, stage, done) if validating else None
        # a stop decided by the clock or the caller ends the run here, and so does the stage's budget where this is
        # the last stage: that step is logged and saved like the last. Every rank takes the same decision.
        asked = ended = False
        if stop is not None or time_limit is not None:
            asked = _agreed((stop is not None and stop())
                            or (time_limit is not None and time.time() - t_called >= time_limit), world, dev)
        if stage.patience is not None or stage.max_hours is not None:
            ended = _agreed(budget.finished is not None, world, dev)
        stopping = asked or ended
        # a budget that ends a stage with a successor moves the run on to it
        moved_on = ended and run.end_stage_early(idx, done) and not asked
        if logging or validating or (run.main and stopping):
            record = _record(done, idx, stage, loss, outputs, flow, valid, run.opt, precision, clock, val, budget,
                             idx in run.ended)
            with open(run_dir / METRICS, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            if on_log:
                on_log(record)
        if run.main and (done % schedule.checkpoint_every == 0 or done == end or stopping):
            run.save(done, idx)
        if stopping:
            run.start = done
            return record, moved_on
    return record, False


def _record(done, idx, stage, loss, outputs, flow, valid, opt, precision, clock, val, budget, cut=False) -> dict:
    """One line of the metrics log."""
    with torch.no_grad():
        epe = endpoint_error(outputs["flow"].detach().float(), flow, valid).item()
    now = time.time()
    record = {"step": done, "stage": idx, "finest_level": stage.finest_level, "loss": round(loss.item(), 5),
              "epe": round(epe, 4), "lr": opt.param_groups[0]["lr"], "precision": precision,
              "steps_per_s": round(clock["steps"] / max(now - clock["t"], 1e-9), 4), "time": round(now, 1)}
    clock["t"], clock["steps"] = now, 0
    if val is not None:
        record["val_epe"] = round(val["aee"], 4)
        record["val_bands"] = {k: (None if b["aee"] is None else round(b["aee"], 4)) for k, b in val["by_magnitude"].items()}
    if budget.finished is not None:
        record["stage_ended" if cut else "stopped"] = budget.finished
    return record


@torch.no_grad()
def validate(model: LiteFlowNet, batches: list, stage: Stage) -> dict:
    """AEE (pixels, over all pixels of a fixed set of synthetic pairs) at the stage's finest level, upsampled to the
    labels, and its ``by_magnitude`` bands (:mod:`flowcli.metrics`): a summary of a pixel-weighted accumulator."""
    model.eval()
    dev = next(model.parameters()).device
    acc = MetricAccumulator("synthetic")
    for b in batches:
        out = model(b["img1"].to(dev), b["img2"].to(dev), finest_level=stage.finest_level, skip_finest_r=stage.skip_finest_r)
        out = F.interpolate(out.float(), size=b["flow"].shape[2:], mode="bilinear", align_corners=False)
        for pred, gt, valid in zip(out.cpu().numpy(), b["flow"].numpy(), b["valid"].numpy()):
            acc.add(pred.transpose(1, 2, 0), gt.transpose(1, 2, 0), valid)
    return acc.summary()


def export_weights(run_dir_or_state: str | Path, dst: str | Path, *, name: str, meta: Optional[dict] = None,
                   half: bool = True, average: bool = True) -> Path:
    """Turn a run state (``last.pt`` or a ``step_*.pt``) into a bundled-weights checkpoint; ``meta`` adds card
    facts (training data, hardware, wall time, metrics). Records the finest trained level so inference stops there.
    With ``average`` (default) the run's moving average of the weights is exported where it keeps one."""
    path = Path(run_dir_or_state)
    if path.is_dir():
        path = path / RUN_STATE
    state = torch.load(path, map_location="cpu", weights_only=True)
    config = TrainConfig.from_dict(state["config"])
    index, _, _ = config.stage_at(max(0, state["step"] - 1))
    # the finest level trained so far: a later stage may train only coarse levels (new motions) and keep the rest
    stage = min(config.stages[:index + 1], key=lambda s: (s.finest_level, s.skip_finest_r))
    weights = dict(state["model"])
    averaged = average and "ema" in state
    if averaged:
        weights.update(state["ema"]["tensors"])
    info = {"name": name, "train_step": state["step"], "finest_level": stage.finest_level,
            "skip_finest_r": stage.skip_finest_r, "training_data": config.data, "schedule": state["config"]["stages"],
            "weight_average": ({"decay": config.ema_decay, "updates": state["ema"]["updates"]} if averaged else None),
            **(meta or {})}
    return save_checkpoint(dst, weights, info, half=half)
