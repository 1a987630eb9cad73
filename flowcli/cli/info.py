"""``flowcli info``: versions, the device that ``auto`` picks, and the weights' card and inference recipe."""
from __future__ import annotations

from typing import Optional

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import device_option


@click.command(short_help="Versions, device, the weights' card and recipe.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None, metavar="PATH",
              help="Describe this checkpoint instead of the bundled one.")
@device_option()
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
@pass_app
def command(app, weights: Optional[str], device: str, as_json: bool) -> None:
    """Show the flowcli, Python and torch versions, the device, the weights and their default inference recipe.
    Exit 1 when the weights cannot be loaded."""
    from flowcli.devices import resolve_device
    from flowcli.jobs.health import environment, weights_card

    env = environment()
    try:
        env["device"] = str(resolve_device(device))
    except ValueError as exc:
        env["device"], env["device_error"] = None, str(exc)
    card = weights_card(weights, hint="pass --weights PATH")
    if as_json:
        app.json({**env, "weights": card})
    else:
        lines = [f"flowcli {env['flowcli']}  (python {env['python']}, {env['platform']})",
                 f"torch {env['torch']}, numpy {env['numpy']}, opencv {env['opencv']}, "
                 f"ffmpeg {env['ffmpeg'] or 'missing'}",
                 f"device: {device} -> {env['device'] or env.get('device_error')}"
                 + (f"  (CUDA: {', '.join(env['cuda_devices'])})" if env["cuda_devices"] else "  (no CUDA)")
                 + f", {env['cpu_threads']} CPU threads"]
        label = "weights" if weights else "bundled weights"
        if card["available"]:
            lines.append(f"{label}: {card['path']} ({card['name']}, {card['kind']} checkpoint"
                         + (f", known as {card['entry']}" if card.get("entry") else "") + ")")
            lines += [f"  {key}: {value}" for key, value in card["meta"].items() if key != "name"]
            lines += [f"  weight set {name}: {count} tensors differ from the main weights (candidates net@S:{name})"
                      for name, count in card["weight_sets"].items()]
            lines.append(f"  recipe {card['recipe_text']}")
            lines += [f"  recipe {text}" for text in card.get("presets_text", {}).values()]
            lines.append("  recipe plain: the network alone")
            if card.get("card_file"):
                lines.append(f"  card: {card['card_file']}")
        else:
            lines.append(f"{label}: none ({card.get('error')})")
        for line in lines:
            app.console.print(line, markup=False)
    if not card["available"]:
        app.abort(f"no usable weights: {card.get('error')}")
