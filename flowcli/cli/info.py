"""``flowcli info``: versions, the device that ``auto`` picks, and the bundled weights' card."""
from __future__ import annotations

import platform
from typing import Optional

import click

from flowcli.cli.common import console, json_out


def environment() -> dict:
    """Versions of the tool and what it runs on (also used by ``doctor``)."""
    import cv2
    import numpy as np
    import torch

    from flowcli import __version__

    cuda = torch.cuda.is_available()
    devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else []
    env = {"flowcli": __version__, "python": platform.python_version(), "platform": platform.platform(terse=True),
           "torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__,
           "cuda_available": cuda, "cuda_devices": devices, "cpu_threads": torch.get_num_threads()}
    try:
        import imageio_ffmpeg

        env["ffmpeg"] = imageio_ffmpeg.get_ffmpeg_version()
    except Exception as exc:  # noqa: BLE001 - reported, not fatal: only `video` needs ffmpeg
        env["ffmpeg"] = None
        env["ffmpeg_error"] = " ".join(str(exc).split())
    return env


def weights_card(weights: Optional[str] = None) -> dict:
    """The checkpoint's card (its metadata) and where it is; ``{"available": False, ...}`` when absent."""
    from flowcli.weights import BUNDLED, CheckpointError, bundled_path, read_checkpoint, weights_dir

    card = {"path": weights, "available": False}
    try:
        path = weights if weights else bundled_path()
        ckpt = read_checkpoint(path)
    except (CheckpointError, FileNotFoundError) as exc:
        if not weights:
            card["path"] = str(weights_dir() / BUNDLED[0].filename)
        card["error"] = " ".join(str(exc).split()).replace("pass weights=PATH", "pass --weights PATH")
        return card
    card.update(path=str(path), available=True, kind=ckpt.kind, meta=ckpt.meta)
    if not weights:
        md = weights_dir() / BUNDLED[0].card
        card["card_file"] = str(md) if md.exists() else None
    return card


def _fmt_meta(meta: dict) -> list[str]:
    lines = []
    for key in ("name", "training_data", "steps", "source"):
        if meta.get(key) not in (None, ""):
            lines.append(f"  {key}: {meta[key]}")
    metrics = meta.get("metrics") or {}
    if isinstance(metrics, dict):
        for name, value in metrics.items():
            lines.append(f"  metric {name}: {value}")
    return lines


@click.command(short_help="Versions, device and the bundled weights' card.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None, metavar="PATH",
              help="Describe this checkpoint instead of the bundled one.")
@click.option("--device", default="auto", show_default=True, metavar="DEVICE",
              help="Which device this setting resolves to.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON on stdout.")
def command(weights: Optional[str], device: str, as_json: bool) -> None:
    """Show the flowcli, Python and torch versions, the device, and the weights' card."""
    from flowcli.api import resolve_device

    env = environment()
    try:
        env["device"] = str(resolve_device(device))
    except ValueError as exc:
        env["device"] = None
        env["device_error"] = str(exc)
    card = weights_card(weights)
    if as_json:
        json_out({**env, "weights": card})
        return
    con = console()
    lines = [f"flowcli {env['flowcli']}  (python {env['python']}, {env['platform']})",
             f"torch {env['torch']}, numpy {env['numpy']}, opencv {env['opencv']}, ffmpeg {env['ffmpeg'] or 'missing'}",
             f"device: {device} -> {env['device'] or env.get('device_error')}"
             + (f"  (CUDA: {', '.join(env['cuda_devices'])})" if env["cuda_devices"] else "  (no CUDA)")
             + f", {env['cpu_threads']} CPU threads"]
    label = "weights" if weights else "bundled weights"
    if card["available"]:
        lines.append(f"{label}: {card['path']} ({card['kind']} checkpoint)")
        lines += _fmt_meta(card["meta"])
        if card.get("card_file"):
            lines.append(f"  card: {card['card_file']}")
    else:
        lines.append(f"{label}: none ({card.get('error')})")
    for line in lines:
        con.print(line, markup=False)
