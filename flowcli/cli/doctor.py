"""``flowcli doctor``: is this installation working? Runs the bundled example pair and checks the result.

Exit 1 when something is broken: a missing file, weights that do not load, non-finite flow, a wrong shape, or an
average endpoint error on the example pair above ``flowcli.jobs.health.MAX_EXAMPLE_AEE`` (1 px; finite but wrong flow).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import flow_options, make_estimator


@click.command(short_help="Check the installation on the bundled example pair.")
@click.option("--examples", "examples", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder with frame_0001.png, frame_0002.png, frame_0001_true.flo (default: the bundled examples).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON on stdout.")
@flow_options
@pass_app
def command(app, examples: Optional[str], as_json: bool, flow) -> None:
    """Run the example pair through the weights (bundled unless --weights), compare with its true flow (average
    endpoint error, px) and report device and speed. Exit 1 when something is broken, or when that error is above
    1 px (the bundled weights give about 0.2 px)."""
    from flowcli.jobs.health import EXAMPLE_FILES, Checks, environment, examples_dir, run_example, weights_card

    checks = Checks()
    env = environment()
    checks.add("ok", "versions", f"flowcli {env['flowcli']}, torch {env['torch']}, python {env['python']}, "
                                 f"opencv {env['opencv']}")
    if env["ffmpeg"]:
        checks.add("ok", "ffmpeg", f"{env['ffmpeg']} (for `flowcli video`)")
    else:
        checks.add("fail", "ffmpeg", f"not usable, `flowcli video` will not work: {env.get('ffmpeg_error')}")
    folder = Path(examples) if examples else examples_dir()
    missing = [name for name in EXAMPLE_FILES if not (folder / name).is_file()]
    checks.add("fail", "example pair", f"missing in {folder}: {', '.join(missing)}") if missing else \
        checks.add("ok", "example pair", str(folder))
    card = weights_card(flow.weights, hint="pass --weights PATH")
    if card["available"]:
        checks.add("ok", "weights", f"{card['path']} ({card['name']}; recipe {card['recipe_text']})")
    else:
        checks.add("fail", "weights", str(card.get("error")))
    result: dict = {}
    if not checks.broken:
        try:
            est = make_estimator(app, flow)
        except (ValueError, OSError, RuntimeError) as exc:
            checks.add("fail", "load", " ".join(str(exc).split()))
        else:
            checks.add("ok", "device", f"{est.device} ({est.precision}), {env['cpu_threads']} CPU threads")
            result = run_example(est, folder, checks)
    if not app.quiet:
        from rich.markup import escape

        for c in checks.items:
            tag = {"ok": "[green]ok  [/]", "fail": "[red]FAIL[/]", "note": "[yellow]note[/]"}[c["status"]]
            app.console.print(f"{tag} {escape(c['check'])}" + (f": {escape(c['detail'])}" if c["detail"] else ""))
    if as_json:
        app.json({"ok": not checks.broken, "checks": checks.items, **result})
    if checks.broken:
        app.abort(f"doctor found a problem: {', '.join(c['check'] for c in checks.items if c['status'] == 'fail')}")
    app.info("all checks passed")
