"""What every command shares: the stderr console, the flow options, the estimator, progress, errors, JSON.

Conventions (all commands follow them):

* Messages, progress and errors go to ONE rich console on stderr (:func:`console`); stdout carries nothing but
  the ``--json`` result (:func:`json_out`), so ``flowcli pair ... --json | jq`` works.
* Errors are one line ``error: <message>`` on stderr. Usage errors (bad option, missing argument, unknown
  extension given on the command line) exit 2; runtime errors (unreadable file, broken checkpoint, failed
  items) exit 1; an interrupt exits 130. ``--debug`` adds the traceback. The mapping lives in
  :class:`FlowGroup`, so command authors just raise: ``ValueError``/``FileNotFoundError``/``OSError``/
  ``RuntimeError``/``CheckpointError`` -> exit 1, ``click.UsageError``/``click.BadParameter`` -> exit 2, or
  :func:`fail` for a message of their own.
"""
from __future__ import annotations

import functools
import json
import re
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Optional

import click
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

__all__ = [
    "CliError", "FlowGroup", "Settings", "console", "fail", "flow_options", "info", "json_out", "make_estimator",
    "progress", "route_warnings", "settings", "verbose", "warn",
]

# Exceptions that are the user's or the environment's problem, not a bug: one line, exit 1.
RUNTIME_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, OSError, RuntimeError)


@dataclass
class Settings:
    """Global options decided once by the group (``-v/-q``, ``--debug``), kept in ``ctx.obj``."""

    verbosity: int = 0  # -1 quiet, 0 normal, >0 verbose
    debug: bool = False

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0


_SETTINGS = Settings()
_CONSOLE: Optional[Console] = None


def settings() -> Settings:
    """The current invocation's settings (defaults when a command runs outside the group, e.g. in a test)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        obj = ctx.find_object(Settings)
        if obj is not None:
            return obj
    return _SETTINGS


def _new_console() -> Console:
    # soft_wrap: a long path in an error must stay on one line even when stderr is a file or a narrow terminal;
    # highlight off: file names and numbers are printed as given.
    return Console(stderr=True, soft_wrap=True, highlight=False)


def console() -> Console:
    """The one rich console, on stderr. The group makes a fresh one per invocation (so that it follows the
    current stderr, as under click's CliRunner); commands only ever print through this."""
    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = _new_console()
    return _CONSOLE


def reset_console() -> Console:
    """Start a new console (called by the group at the start of each invocation)."""
    global _CONSOLE
    _CONSOLE = _new_console()
    return _CONSOLE


def info(message: str) -> None:
    """A normal message on stderr (suppressed by ``-q``). Printed literally: no rich markup is interpreted."""
    if not settings().quiet:
        console().print(message, markup=False)


def verbose(message: str) -> None:
    """A message shown only with ``-v``."""
    if settings().verbosity > 0:
        console().print(message, markup=False, style="dim")


def warn(message: str) -> None:
    """A warning on stderr, shown even with ``-q`` (it is about this run's results)."""
    console().print(f"warning: {message}", markup=False)


def route_warnings() -> None:
    """Show Python warnings (the library's RuntimeWarnings: an OOM fallback, emulated bf16 training) as one
    ``warning: ...`` line on the console instead of Python's two-line form with a source line."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        warn(" ".join(str(message).split()))

    warnings.showwarning = show


def error_line(message: str) -> None:
    """Print ``error: <message>`` as one line (newlines in the message are folded)."""
    text = " ".join(str(message).split()) or "unknown error"
    console().print(f"error: {text}", markup=False, style="bold red" if console().is_terminal else None)


def json_out(obj: Any) -> None:
    """Write ``obj`` as JSON on stdout (the only thing commands ever write there)."""
    click.echo(json.dumps(obj, indent=2, sort_keys=False, default=_json_default))


def _json_default(value: Any):
    # numpy scalars and paths show up in results; turn them into plain JSON values
    if hasattr(value, "item"):
        return value.item()
    return str(value)


# ---- errors ----------------------------------------------------------------------------------------------------
class CliError(click.ClickException):
    """A runtime failure with a message for the user: exit 1 (or ``exit_code``)."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def fail(message: str, exit_code: int = 1) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
    """Stop the command with ``error: <message>`` and ``exit_code`` (1 = runtime error)."""
    raise CliError(message, exit_code)


def _message(exc: BaseException) -> str:
    text = str(exc)
    # FileNotFoundError from open() reads "[Errno 2] No such file or directory: 'x'"; keep it but drop the errno
    text = re.sub(r"^\[Errno \d+\]\s*", "", text)
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return text or type(exc).__name__


class FlowGroup(click.Group):
    """A click group that turns every failure into one line on stderr and the documented exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        # the order of registration (the order of the workflow), not alphabetical
        return list(self.commands)

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        reset_console()
        global _SETTINGS
        _SETTINGS = Settings()
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:  # pragma: no cover - click returns it in non-standalone mode
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if _SETTINGS.debug and not isinstance(exc, click.UsageError):
                traceback.print_exc(file=sys.stderr)
            message = exc.format_message()
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see '{exc.ctx.command_path} --help')"
            error_line(message)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            error_line("interrupted")
            sys.exit(130)
        except RUNTIME_ERRORS as exc:
            if _SETTINGS.debug:
                traceback.print_exc(file=sys.stderr)
            error_line(_message(exc))
            sys.exit(1)
        except Exception:  # a bug: show it whole, whatever --debug says
            traceback.print_exc(file=sys.stderr)
            error_line("internal error (the traceback above is a bug; please report it)")
            sys.exit(1)
        # a command's return value or ctx.exit(code) is the exit status
        sys.exit(rv if isinstance(rv, int) else 0)


def install_settings(ctx: click.Context, verbosity: int, debug: bool) -> Settings:
    """Called by the group callback: store the global options in the context (and for the error handler)."""
    global _SETTINGS
    _SETTINGS = ctx.ensure_object(Settings)
    _SETTINGS.verbosity = verbosity
    _SETTINGS.debug = debug
    return _SETTINGS


# ---- flow options and the estimator ----------------------------------------------------------------------------
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def _check_device(ctx, param, value):
    if value is None:
        return value
    value = value.strip().lower()
    if not _DEVICE_RE.match(value):
        raise click.BadParameter(f"{value!r} is not a device (use auto, cpu, cuda or cuda:N)", ctx, param)
    return value


def flow_options(func: Callable) -> Callable:
    """Add ``--weights PATH``, ``--device``, ``--fp16``, ``--bf16`` and ``--scale`` to a command that computes flow.

    The command receives ``weights`` (str or None = bundled), ``device`` (str), ``fp16`` and ``bf16`` (bool) and
    ``scale`` (float); pass them to :func:`make_estimator`.
    """
    options = [
        click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None, metavar="PATH",
                     envvar="FLOWCLI_WEIGHTS",
                     help="Checkpoint: a flowcli or public LiteFlowNet file. Default: the bundled weights."),
        click.option("--device", default="auto", show_default=True, callback=_check_device, metavar="DEVICE",
                     help="auto, cpu, cuda or cuda:N."),
        click.option("--fp16", is_flag=True, help="Half-precision inference (CUDA only)."),
        click.option("--bf16", is_flag=True, help="bfloat16 inference (CUDA; on CPU slower than fp32)."),
        # the range is flowcli.api.SCALE_RANGE, written out: importing the api would load torch at start-up
        click.option("--scale", type=click.FloatRange(0.25, 4.0), default=1.0, show_default=True, metavar="S",
                     help="Run the network on the images resized by S (flow still in the images' pixels). "
                          "2-3 resolve small motions better with the bundled weights, at S² the time and memory; "
                          "large motions get worse."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def precision_of(fp16: bool, bf16: bool) -> str:
    """``--fp16``/``--bf16`` -> the estimator's precision name; both at once is a usage error."""
    if fp16 and bf16:
        raise click.UsageError("--fp16 and --bf16 exclude each other")
    return "fp16" if fp16 else "bf16" if bf16 else "fp32"


def make_estimator(weights: Optional[str] = None, device: str = "auto", fp16: bool = False, bf16: bool = False,
                   scale: float = 1.0):
    """Load an :class:`flowcli.api.Estimator` for the flow options; failures become one-line runtime errors
    (no bundled weights yet, unreadable checkpoint, CUDA requested but absent, fp16 on CPU)."""
    precision = precision_of(fp16, bf16)
    from flowcli.api import get_estimator  # torch is imported only by commands that need it
    from flowcli.weights import CheckpointError

    from flowcli.weights import bundled_path

    try:
        # resolve the bundled file here so that the per-process cache is keyed by the real path
        est = get_estimator(weights if weights is not None else bundled_path(), device=device, precision=precision,
                            scale=scale)
    except CheckpointError as exc:
        if weights is None:
            fail(str(exc).replace("pass weights=PATH", "pass --weights PATH"))
        fail(str(exc))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        fail(_message(exc))
    at = f", scale {scale:g}" if scale != 1 else ""
    verbose(f"weights: {est.checkpoint.meta.get('name', weights or 'bundled')} on {est.device} ({precision}{at})")
    return est


# ---- progress --------------------------------------------------------------------------------------------------
class RateColumn(ProgressColumn):
    """Items per second from rich's own speed estimate, e.g. ``3.2 frames/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


def progress(*, unit: str = "pairs", transient: bool = False) -> Progress:
    """A rich progress bar on the stderr console showing done/total, rate in ``unit``/s and time left.

    Disabled with ``-q`` and when stderr is not a terminal (a log file gets the final summary line instead of
    hundreds of redraws). Use as ``with progress() as bar: task = bar.add_task("pairs", total=n)`` and
    ``bar.update(task, completed=k)`` or ``bar.advance(task)``.
    """
    con = console()
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=con,
        transient=transient,
        disable=settings().quiet or not con.is_terminal,
    )


def rate_text(done: int, seconds: float, unit: str = "pairs") -> str:
    """``"12.3 pairs/s"`` (for progress fields and summaries)."""
    return f"{done / seconds:.1f} {unit}/s" if seconds > 0 else f"- {unit}/s"


def guarded(func: Callable) -> Callable:
    """For a command used outside :class:`FlowGroup` (e.g. invoked directly in a test): the same one-line
    error mapping, raised as click exceptions so that click's own handling prints them."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except RUNTIME_ERRORS as exc:
            if settings().debug:
                raise
            raise CliError(_message(exc)) from None

    return wrapper
