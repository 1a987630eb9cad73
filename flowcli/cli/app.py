"""The application object every command receives: one rich console on stderr, the verbosity decided once, and the
mapping of failures to one line and an exit code.

Conventions (all commands follow them):

* Messages, progress and errors go to ONE rich console on stderr (:attr:`App.console`); stdout carries nothing but
  the ``--json`` result (:meth:`App.json`), so ``flowcli pair ... --json | jq`` works.
* Under torchrun (``WORLD_SIZE`` > 1) rank 0 reports as a plain run does; the other ranks are quiet, and every
  rank's errors, warnings and failed items start with ``rank N:``. Only rank 0 writes on stdout.
* Errors are one line ``error: <message>`` on stderr. Usage errors exit 2; runtime errors (unreadable file, broken
  checkpoint, failed items) exit 1; an interrupt exits 130 (SIGINT) or 143 (SIGTERM). ``--debug`` adds the traceback.
  :class:`FlowGroup` does the mapping, so commands just raise (``ValueError``/``OSError``/``RuntimeError`` -> exit 1,
  ``click.UsageError`` -> exit 2) or call :meth:`App.abort`.
* Running out of memory (``MemoryError``, numpy's "Unable to allocate", torch's CPU allocator or CUDA "out of memory")
  is one line too, with what to try: the options of the command that ran (``--scale 0.5``, a smaller
  ``--batch-size``, ``--fp16`` on CUDA); see :func:`memory_message`.
"""
from __future__ import annotations

import json
import re
import signal
import sys
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, NoReturn, Optional

import click
from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, TaskProgressColumn,
                           TextColumn, TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

__all__ = ["App", "CliError", "FlowGroup", "Terminated", "is_out_of_memory", "memory_message", "memory_tips",
           "pass_app", "rate_text"]

# Exceptions that are the user's or the environment's problem, not a bug: one line, exit 1.
RUNTIME_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, RuntimeError, MemoryError)

# What allocators say when memory runs out: torch.cuda.OutOfMemoryError ("CUDA out of memory"), MPS ("MPS backend out
# of memory"), torch's CPU allocator ("DefaultCPUAllocator: can't allocate memory"), numpy ("Unable to allocate"),
# errno ENOMEM ("Cannot allocate memory").
_OUT_OF_MEMORY = re.compile(r"out of memory|can't allocate memory|cannot allocate memory|unable to allocate",
                            re.IGNORECASE)


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
    command: Optional[click.Command] = field(default=None, repr=False)  # the subcommand running (set by FlowGroup)
    rank: int = 0  # this process's place in a torchrun job (rank 0 of 1 otherwise)
    ranks: int = 1

    @property
    def quiet(self) -> bool:
        return self.verbosity < 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that reports the job (every process of a plain run)."""
        return self.rank == 0

    def join_world(self, rank: int, ranks: int) -> None:
        """Take this process's place among ``ranks`` processes: the ranks after 0 only report errors."""
        self.rank, self.ranks = rank, ranks
        if rank > 0:
            self.verbosity = -1

    @property
    def _tag(self) -> str:
        return f"rank {self.rank}: " if self.ranks > 1 else ""

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
        self.console.print(f"{self._tag}warning: {message}", markup=False)

    def failed(self, message: str) -> None:
        """A batch item that failed (the job goes on), shown even with ``-q``."""
        self.console.print(f"{self._tag}failed: {message}", markup=False)

    def error_line(self, message: str) -> None:
        text = " ".join(str(message).split()) or "unknown error"
        self.console.print(f"{self._tag}error: {text}", markup=False,
                           style="bold red" if self.console.is_terminal else None)

    def abort(self, message: str, code: int = 1) -> NoReturn:
        """Stop the command with ``error: <message>`` and exit status ``code``."""
        raise CliError(message, code)

    def json(self, obj: Any) -> None:
        """Write ``obj`` as JSON on stdout (the only thing commands ever write there); rank 0 only."""
        if not self.is_main:
            return
        try:
            click.echo(json.dumps(obj, indent=2, sort_keys=False, default=_json_default))
            sys.stdout.flush()  # now, so that a full disk or a closed pipe is reported as about stdout
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), "stdout (the --json result)") from None

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
    """One line for an exception, ``<file>: <problem>`` where an ``OSError`` names its file (``[Errno 28]`` prefixes
    and Python's quoting dropped), so that a full disk reads ``error: out/a.flo: No space left on device``."""
    text = re.sub(r"^\[Errno [-\w]+\]\s*", "", str(exc))
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        names = f"{exc.filename} -> {exc.filename2}" if exc.filename2 is not None else f"{exc.filename}"
        text = f"{names}: {exc.strerror}"
    elif isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return " ".join(text.split()) or type(exc).__name__


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` says that memory ran out (host or device)."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError) and exc.errno == 12:  # ENOMEM
        return True
    return isinstance(exc, (RuntimeError, OSError)) and bool(_OUT_OF_MEMORY.search(str(exc)))


def memory_message(exc: BaseException, command: Optional[click.Command] = None) -> str:
    """One line for running out of memory: the allocator's first sentence (what it tried to allocate), then what to
    try, among the options ``command`` has (all of them when it is not known): ``--scale 0.5``, a smaller
    ``--batch-size``, and ``--fp16`` when the device was a GPU."""
    text = " ".join(str(exc).split())
    # torch's CPU allocator: "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: ... Error code 12 (...)"
    text = re.sub(r"^\[enforce fail at [^\]]*\][^.]*\.\s*", "", text)
    text = re.sub(r"\.?\s*Error code \d+ \([^)]*\)$", "", text)
    sentences = re.split(r"(?<=[A-Za-z)\]])\. ", text)  # not after a digit: numpy says "728. TiB"
    head = sentences[0]
    if len(sentences) > 1 and sentences[1].lower().startswith("tried to allocate"):  # CUDA: keep the size
        head += ", t" + sentences[1][1:]
    head = head.rstrip(".")
    if len(head) > 200:
        head = head[:197] + "..."
    if "out of memory" not in head.lower():
        head = f"out of memory: {head}" if head else "out of memory"
    gpu = "cuda" in text.lower() or type(exc).__name__ == "OutOfMemoryError"
    return f"{head}; {memory_tips(command, gpu=gpu)}"


def memory_tips(command: Optional[click.Command] = None, *, gpu: bool = False) -> str:
    """What to try after running out of memory, among the options ``command`` has (all when it is not known):
    ``"try --scale 0.5, a smaller --batch-size or --fp16"`` (``--fp16`` only for a ``gpu``)."""
    names = {p.name for p in command.params} if command is not None else {"scale", "batch_size", "fp16"}
    tips = [tip for name, tip in (("scale", "--scale 0.5"), ("batch_size", "a smaller --batch-size"),
                                  ("fp16", "--fp16")) if name in names and (name != "fp16" or gpu)]
    if not tips:
        return "free memory or use a machine with more"
    return "try " + (", ".join(tips[:-1]) + " or " + tips[-1] if len(tips) > 1 else tips[0])


class _Interrupted(Exception):
    """Carries a KeyboardInterrupt out of a command past click, which would print an empty line on stderr for it
    (right after a ^C on a terminal, but noise in a log); FlowGroup reports the interrupt it holds."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__()
        self.interrupt = interrupt


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


class FlowGroup(click.Group):
    """A click group that turns every failure into one line on stderr and the documented exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)  # the order of registration (the workflow's), not alphabetical

    def resolve_command(self, ctx: click.Context, args):  # noqa: D102
        name, cmd, rest = super().resolve_command(ctx, args)
        if isinstance(ctx.obj, App):
            ctx.obj.command = cmd  # for the hints of error messages (which options this command has)
        return name, cmd, rest

    def invoke(self, ctx: click.Context):  # noqa: D102
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            if not isinstance(ctx.obj, App):  # main(standalone_mode=False): the caller gets the interrupt itself
                raise
            raise _Interrupted(exc) from None

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
        except (click.Abort, KeyboardInterrupt, _Interrupted) as exc:
            # click wraps an interrupt outside a command in Abort (after printing an empty line); inside a command
            # it comes as _Interrupted, and the empty line only goes to a terminal, after the ^C there
            if isinstance(exc, _Interrupted):
                cause = exc.interrupt
                if app.console.is_terminal and not isinstance(cause, Terminated):
                    app.console.print()
            else:
                cause = exc.__cause__ if isinstance(exc, click.Abort) else exc
            app.error_line(getattr(cause, "message", None) or "interrupted")
            sys.exit(143 if isinstance(cause, Terminated) else 130)
        except RUNTIME_ERRORS as exc:
            if app.debug:
                traceback.print_exc(file=sys.stderr)
            app.error_line(memory_message(exc, app.command) if is_out_of_memory(exc) else message_of(exc))
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
