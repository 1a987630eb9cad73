"""The ``flowcli`` command line: a click group whose commands parse their options, call one library job and render
what it returns. One module per command, each exposing a click command named ``command``."""
from __future__ import annotations

import importlib

import click

from flowcli import __version__
from flowcli.cli.app import App, FlowGroup, pass_app

# (command name, module) in the order `flowcli --help` lists them: the order of the workflow
COMMANDS = [("pair", "pair"), ("dir", "dir"), ("video", "video"), ("viz", "viz"), ("convert", "convert"),
            ("info", "info"), ("doctor", "doctor"), ("eval", "eval"), ("train", "train"), ("bench", "bench")]


@click.group("flowcli", cls=FlowGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="flowcli", message="%(prog)s %(version)s")
@click.option("-v", "--verbose", "verbose", count=True, help="More messages (repeatable).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings; no progress bars.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors (otherwise errors are one line).")
@click.pass_context
@pass_app
def main(app: App, ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """Dense optical flow with LiteFlowNet.

    Results go to files (or, with --json, to stdout); messages and progress go to stderr.
    Exit status: 0 ok, 1 runtime error or failed items, 2 usage error, 130 interrupted (143 on SIGTERM).
    """
    if verbose and quiet:
        raise click.UsageError("-v and -q exclude each other")
    app.verbosity, app.debug = (-1 if quiet else verbose), debug
    from flowcli.distributed import World

    world = World.from_env()  # under torchrun: rank 0 reports, the others only say what went wrong
    app.join_world(world.rank, world.size)
    app.route_warnings()
    if ctx.invoked_subcommand is None:  # `flowcli` alone: the usage, not an error
        click.echo(ctx.get_help())
        return
    from flowcli.runtime import retain_freed_memory

    retain_freed_memory()  # a CLI process runs many passes of one size: no page faults after the first


for _name, _module in COMMANDS:
    main.add_command(importlib.import_module(f"{__name__}.{_module}").command, _name)

__all__ = ["main"]
