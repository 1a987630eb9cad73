"""The ``flowcli`` command line: a click group whose commands parse, call the library and report.

Commands live in one module each and expose a click command named ``command``. ``eval``, ``train`` and
``bench`` are optional modules: registered when present, skipped when the module itself does not exist (any
other import failure is a real error and surfaces).
"""
from __future__ import annotations

import importlib

import click

from flowcli import __version__
from flowcli.cli.common import FlowGroup, install_settings, route_warnings
from flowcli.runtime import retain_freed_memory

# (command name, module) in the order `flowcli --help` lists them
_COMMANDS = [("pair", "pair"), ("dir", "dir_"), ("video", "video"), ("viz", "viz"), ("convert", "convert"),
             ("info", "info"), ("doctor", "doctor")]
_OPTIONAL = [("eval", "eval"), ("train", "train"), ("bench", "bench")]


@click.group(cls=FlowGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="flowcli", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", "verbose", count=True, help="More messages (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings; no progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (otherwise errors are one line).")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Dense optical flow with LiteFlowNet.

    Results go to files (or, with --json, to stdout); messages and progress go to stderr.
    Exit status: 0 ok, 1 runtime error or failed items, 2 usage error, 130 interrupted.
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q exclude each other")
    install_settings(ctx, -1 if quiet else verbose, debug)
    route_warnings()
    retain_freed_memory()  # a CLI process runs many passes of one size: no page faults after the first


def _load(module: str, optional: bool):
    name = f"{__name__}.{module}"
    try:
        return importlib.import_module(name).command
    except ModuleNotFoundError as exc:
        # only "this optional module does not exist (yet)" is tolerated; a missing dependency inside it is not
        if optional and exc.name == name:
            return None
        raise


for _name, _module in _COMMANDS + _OPTIONAL:
    _cmd = _load(_module, optional=(_name, _module) in _OPTIONAL)
    if _cmd is not None:
        main.add_command(_cmd, _name)

__all__ = ["main"]
