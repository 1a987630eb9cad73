"""The application object every command receives: one rich console on stderr, the verbosity decided once, and the
mapping of failures to one line and an exit code.

Conventions (all commands follow them):

* Messages, progress and errors go to ONE rich console on stderr (:attr:`App.console`); stdout carries nothing but
  the ``--json`` result (:meth:`App.json`), so ``flowcli pair ... --json | jq`` works.
* Errors are one line ``error: <message>`` on stderr. Usage errors exit 2; runtime errors (unreadable file, broken
  checkpoint, failed items) exit 1; an interrupt exits 130 (SIGINT) or 143 (SIGTERM). ``--debug`` adds the traceback.
  :class:`FlowGroup` does the mapping, so commands just raise (``ValueError``/``OSError``/``RuntimeError`` -> exit 1,
  ``click.UsageError`` -> exit 2) or call :meth:`App.abort`.
"""
from __future__ import annotations

import json
import re
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

__all__ = ["App", "CliError", "FlowGroup", "Terminated", "pass_app", "rate_text"]

# Exceptions that are the user's or the environment's problem, not a bug: one line, exit 1.
RUNTIME_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError)


def _new_console() -> Console:
    # soft_wrap: a long path in an error must stay on one line even when stderr is a file or a narrow terminal;
    # highlight off: file names and numbers are printed as given.
    return Console(stderr=True, soft_wrap=True, highlight=False)


class CliError(click.ClickException):
    """A runtime failure with a message for the user: exit 1 (or ``exit_code``)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Terminated(KeyboardInterrupt):
    """SIGTERM (what ``timeout``, Docker and Slurm send), raised in the main thread like Ctrl-C so that long jobs
    clean up the same way; exit 143."""


class RateColumn(ProgressColumn):
    """Items per second from rich's own speed estimate, e.g. ``3.2 frames/s``."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self.unit = unit

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} {self.unit}/s" if speed else f"- {self.unit}/s", style="progress.data.speed")


def rate_text(done: int, seconds: float, unit: str = "pairs") -> str:
    """``"12.3 pairs/s"`` (for progress fields and summaries)."""
    return f"{done / seconds:.1f} {unit}/s" if seconds > 0 else f"- {unit}/s"


@dataclass
class App:
    """The invocation's console and global options (``-v/-q``, ``--debug``), passed to commands as click's ``obj``."""

    verbosity: int = 0  # -1 quiet, 0 normal, >0 verbose
    debug: bool = False
    console: Console = field(default_factory=_new_console)

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    def info(self, message: str) -> None:
        """A normal message on stderr (suppressed by ``-q``), printed literally (no rich markup)."""
        if not self.quiet:
            self.console.print(message, markup=False)

    def verbose(self, message: str) -> None:
        """A message shown only with ``-v``."""
        if self.verbosity > 0:
            self.console.print(message, markup=False, style="dim")

    def warn(self, message: str) -> None:
        """A warning on stderr, shown even with ``-q`` (it is about this run's results)."""
        self.console.print(f"warning: {message}", markup=False)

    def failed(self, message: str) -> None:
        """A batch item that failed (the job goes on), shown even with ``-q``."""
        self.console.print(f"failed: {message}", markup=False)

    def error_line(self, message: str) -> None:
        text = " ".join(str(message).split()) or "unknown error"
        self.console.print(f"error: {text}", markup=False, style="bold red" if self.console.is_terminal else None)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Stop the command with ``error: <message>`` and exit status ``code``."""
        raise CliError(message, code)

    def json(self, obj: Any) -> None:
        """Write ``obj`` as JSON on stdout (the only thing commands ever write there)."""
        click.echo(json.dumps(obj, indent=2, sort_keys=False, default=_json_default))

    def progress(self, *, unit: str = "pairs", transient: bool = False) -> Progress:
        """A rich progress bar on the stderr console (done/total, rate in ``unit``/s, time left); off with ``-q`` and
        when stderr is not a terminal (a log file gets the final summary line instead of hundreds of redraws)."""
        return Progress(SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), TaskProgressColumn(), RateColumn(unit), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=self.console, transient=transient,
                        disable=self.quiet or not self.console.is_terminal)

    def route_warnings(self) -> None:
        """Python warnings (the library's RuntimeWarnings: an OOM fallback, emulated bf16) as one ``warning:`` line."""
        def show(message, category, filename, lineno, file=None, line=None) -> None:
            self.warn(" ".join(str(message).split()))

        warnings.showwarning = show


pass_app = click.make_pass_decorator(App, ensure=True)


def _json_default(value: Any):
    # numpy scalars and paths show up in results; turn them into plain JSON values
    return value.item() if hasattr(value, "item") else str(value)


def message_of(exc: BaseException) -> str:
    """One line for an exception: ``[Errno 2]`` prefixes dropped, the file name added where the text lacks it."""
    text = re.sub(r"^\[Errno \d+\]\s*", "", str(exc))
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {exc.strerror or text}"
    return " ".join(text.split()) or type(exc).__name__


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


class FlowGroup(click.Group):
    """A click group that turns every failure into one line on stderr and the documented exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order of registration (the workflow's), not alphabetical

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # noqa: D102
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        app = App()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if _main_thread() else None
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, obj=app, **extra)
        except click.exceptions.Exit as exc:  # pragma: no cover - click returns it in non-standalone mode
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            if app.debug and not isinstance(exc, click.UsageError):
                traceback.print_exc(file=sys.stderr)
            message = exc.format_message()
            if isinstance(exc, click.UsageError) and exc.ctx is not None:
                message += f" (see '{exc.ctx.command_path} --help')"
            app.error_line(message)
            sys.exit(exc.exit_code)
        except (click.Abort, KeyboardInterrupt) as exc:
            cause = exc.__cause__ if isinstance(exc, click.Abort) else exc  # click wraps an interrupt in Abort
            app.error_line(getattr(cause, "message", None) or "interrupted")
            sys.exit(143 if isinstance(cause, Terminated) else 130)
        except RUNTIME_ERRORS as exc:
            if app.debug:
                traceback.print_exc(file=sys.stderr)
            app.error_line(message_of(exc))
            sys.exit(1)
        except Exception:  # a bug: show it whole, whatever --debug says
            traceback.print_exc(file=sys.stderr)
            app.error_line("internal error (the traceback above is a bug; please report it)")
            sys.exit(1)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        sys.exit(rv if isinstance(rv, int) else 0)  # a command's return value or ctx.exit(code) is the exit status


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
