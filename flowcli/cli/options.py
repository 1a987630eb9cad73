"""Options and parameter types the commands share: the flow options (weights, device, precision, recipe) turned into
one :class:`FlowSettings`, path types checked at parse time (a usage error, exit 2), output folders checked before
any work starts (a runtime error, exit 1)."""
from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import click

from flowcli.devices import parse_device
from flowcli.io.flow import FLOW_EXTENSIONS
from flowcli.io.image import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v")  # flowcli.videoio's, without importing it


def input_file() -> click.Path:
    """An existing file (missing -> usage error naming it)."""
    return click.Path(exists=True, dir_okay=False)


class ExtPath(click.ParamType):
    """A path whose extension must be one of ``extensions`` (case-insensitive)."""

    name = "path"

    def __init__(self, extensions: Sequence[str], what: str) -> None:
        self.extensions = tuple(extensions)
        self.what = what

    def convert(self, value, param, ctx):
        text = os.fspath(value)
        ext = Path(text).suffix.lower()
        if ext not in self.extensions:
            self.fail(f"{text}: unknown {self.what} extension {ext or '(none)'!r} "
                      f"(use {', '.join(self.extensions)})", param, ctx)
        return text


def flow_path_option() -> ExtPath:
    return ExtPath(FLOW_EXTENSIONS, "flow file")


def image_path_option() -> ExtPath:
    return ExtPath(IMAGE_EXTENSIONS, "image")


def video_path_option() -> ExtPath:
    return ExtPath(VIDEO_EXTENSIONS, "video")


def check_output_folder(folder: str | os.PathLike, *, create: bool = False) -> Path:
    """Make sure files can be written into ``folder`` (creating it with ``create``), or raise a one-line OSError.

    Writability is tested by creating and removing a hidden file, because permission bits say nothing when the tool
    runs as root or on odd file systems. Temporary files of this tool that a killed run left in ``folder`` more than a
    day ago are deleted (:func:`flowcli.io.atomic.remove_stale_temp_files`); newer ones may belong to a run still
    going, and every reader skips them anyway (they are hidden)."""
    d = Path(folder) if str(folder) else Path(".")
    if create:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create output folder {d}: {exc.strerror or exc}") from None
    if not d.exists():
        raise OSError(f"output folder {d} does not exist")
    if not d.is_dir():
        raise OSError(f"output folder {d} is not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".flowcli-probe-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OSError(f"cannot write into output folder {d}: {exc.strerror or exc}") from None
    from flowcli.io.atomic import remove_stale_temp_files

    remove_stale_temp_files(d)
    return d


def check_distinct(inputs: Sequence[str | os.PathLike], outputs: Sequence[str | os.PathLike]) -> None:
    """Refuse, before any work, an output that is one of the ``inputs`` or another of the ``outputs`` (same resolved
    path): :class:`flowcli.errors.OutputCollisionError` naming both."""
    from flowcli.errors import OutputCollisionError

    seen = {os.path.realpath(p): (p, "input") for p in inputs}
    for out in outputs:
        key = os.path.realpath(out)
        if key in seen:
            raise OutputCollisionError(out, *seen[key])
        seen[key] = (out, "output")


def check_output_file(path: Optional[str]) -> None:
    """Fail before any slow work when a result file cannot be written ('-' is stdout)."""
    if path and path != "-":
        if Path(path).is_dir():
            raise OSError(f"{path} is a folder; give a file name")
        check_output_folder(Path(path).parent)


def device_option(**kw) -> Callable:
    """``--device`` with the one vocabulary every command accepts (auto, cpu, cuda, cuda:N)."""
    def check(ctx, param, value):
        if value is None:
            return value
        text = value.strip().lower()
        try:
            return parse_device(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None

    return click.option("--device", default="auto", show_default=True, callback=check, metavar="DEVICE",
                        help="auto, cpu, cuda or cuda:N.", **kw)


def _scales(ctx, param, value):
    """``--scales`` as floats, each checked like a recipe's (a value out of range is a usage error, exit 2)."""
    if value is None:
        return None
    from flowcli.recipe import check_scales  # numpy only

    try:
        return check_scales([x for x in value.split(",") if x.strip()], "scales")
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc} (a comma-separated list such as 1,0.5,0.25)", ctx, param) from None


def _candidates(ctx, param, value):
    """``--candidates`` as specs, each parsed like a recipe's."""
    if value is None:
        return None
    from flowcli.recipe import parse_candidate

    from flowcli.recipe import Recipe

    try:
        specs = tuple(parse_candidate(x.strip()).spec for x in value.split(",") if x.strip())
        return Recipe(candidates=specs).candidates  # the count and repeats checked as a recipe's
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: {exc}", ctx, param) from None


@dataclass(frozen=True)
class FlowSettings:
    """What the flow options asked for: weights (None = bundled), device, precision, the recipe and its overrides."""

    weights: Optional[str] = None
    device: str = "auto"
    precision: Optional[str] = None  # None: the recipe's (bf16 where the weights allow it and the device has it)
    scale: float = 1.0
    recipe: str = "default"
    scales: Optional[tuple[float, ...]] = None
    refine: Optional[bool] = None
    candidates: Optional[tuple[str, ...]] = None

    @property
    def overrides(self) -> dict:
        """``--candidates``/``--scales``/``--refine`` as :meth:`flowcli.recipe.Recipe.with_overrides` keywords."""
        return {k: v for k, v in (("candidates", self.candidates), ("scales", self.scales), ("refine", self.refine))
                if v is not None}

    def with_recipe(self, name: str) -> "FlowSettings":
        """The same weights and device with another of the weights' recipes."""
        return replace(self, recipe=name)

    def plain(self) -> "FlowSettings":
        """The same weights and device with the network alone (no recipe overrides)."""
        return replace(self, recipe="plain", scales=None, refine=None, candidates=None)


def flow_options(func: Callable) -> Callable:
    """Add the flow options to a command; it receives them as one ``flow: FlowSettings`` argument (see
    :func:`make_estimator`)."""
    options = [
        click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None, metavar="PATH",
                     envvar="FLOWCLI_WEIGHTS",
                     help="Checkpoint: a flowcli or public LiteFlowNet file. Default: the bundled weights."),
        device_option(),
        click.option("--fp16", is_flag=True, help="Half-precision inference (CUDA only)."),
        click.option("--bf16", is_flag=True, help="bfloat16 inference: faster on GPUs and on CPUs with native bf16 "
                                                  "(AVX512-BF16, AMX), far slower on CPUs without it."),
        click.option("--fp32", is_flag=True, help="float32 inference even where the weights' recipe runs bf16 "
                                                  "(by default: bf16 where the recipe allows it and the CPU/GPU "
                                                  "computes it natively, else fp32)."),
        click.option("--recipe", type=click.Choice(["fast", "default", "quality", "plain"]), default="default",
                     show_default=True,
                     help="default: the weights' own inference recipe (candidate flows, selection, refinement); "
                          "fast / quality: the weights' lighter / heavier presets; plain: the network alone (what "
                          "public checkpoints run by default)."),
        click.option("--candidates", callback=_candidates, default=None, metavar="C1,C2,..",
                     help="Candidate flows of the recipe, the first preferred: net@S, net@S:WEIGHT_SET, cascade@B[/R], dis, "
                          "dis-fine, deepflow (e.g. net@1,net@0.25,dis)."),
        click.option("--scales", callback=_scales, default=None, metavar="S1,S2,..",
                     help="Scales of the recipe's network candidates (net@S), the others kept (e.g. 1,0.5,0.25)."),
        click.option("--refine/--no-refine", default=None,
                     help="Switch the recipe's variational refinement on or off."),
        # the range is flowcli.api.SCALE_RANGE, written out: importing the api would load torch at start-up
        click.option("--scale", type=click.FloatRange(0.25, 4.0), default=1.0, show_default=True, metavar="S",
                     help="Run everything on the images resized by S (flow still in the images' pixels)."),
    ]

    @functools.wraps(func)
    def wrapper(*args, weights, device, fp16, bf16, fp32, recipe, candidates, scales, refine, scale, **kwargs):
        if fp16 + bf16 + fp32 > 1:
            raise click.UsageError("--fp16, --bf16 and --fp32 exclude each other")
        precision = "fp16" if fp16 else "bf16" if bf16 else "fp32" if fp32 else None
        _check_scaled(scale, scales, candidates)
        return func(*args, flow=FlowSettings(weights, device, precision, scale, recipe, scales, refine, candidates),
                    **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


def _check_scaled(scale: float, scales, candidates) -> None:
    """--scale multiplies the network scales of --scales/--candidates: their products must stay in range too."""
    from flowcli.recipe import SCALE_RANGE, parse_candidate

    if scale == 1:
        return
    given = list(scales or ()) + [s for c in (candidates or ()) for s in _network_scales(parse_candidate(c))]
    bad = [s * scale for s in given if not SCALE_RANGE[0] <= s * scale <= SCALE_RANGE[1]]
    if bad:
        raise click.UsageError(f"--scale {scale:g} times the network scales asked for gives {bad[0]:g}, outside "
                               f"[{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}]")


def _network_scales(c) -> list[float]:
    return [c.scale] if c.kind == "net" else [c.scale, c.base] if c.kind == "cascade" else []


def rank_device(flow: FlowSettings) -> str:
    """The device this process runs on: ``--device`` as given, or under torchrun the rank's own GPU for cuda/auto
    (:meth:`flowcli.distributed.World.device`)."""
    from flowcli.distributed import World

    return World.from_env().device(flow.device)


def make_estimator(app, flow: FlowSettings):
    """Load an :class:`flowcli.api.Estimator` for the flow options (weights, then the recipe they carry with the
    options' overrides) on this process's device (:func:`rank_device`); the bundled-weights hint names
    ``--weights``."""
    from flowcli.api import get_estimator  # torch is imported only by commands that need it
    from flowcli.errors import MissingWeightsError
    from flowcli.weights import bundled_path

    try:
        # resolve the bundled file here so that the per-process cache is keyed by the real path
        path = flow.weights if flow.weights is not None else bundled_path()
        est = get_estimator(path, device=rank_device(flow), precision=flow.precision, scale=flow.scale,
                            recipe=flow.recipe, recipe_overrides=flow.overrides or None)
    except MissingWeightsError as exc:
        raise exc.with_hint("pass --weights PATH") from None
    at = f", scale {flow.scale:g}" if flow.scale != 1 else ""
    app.verbose(f"weights: {est.checkpoint.name} on {est.device} ({est.precision}{at}); recipe {est.recipe.describe()}")
    return est
