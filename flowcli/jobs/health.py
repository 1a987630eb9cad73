"""What ``flowcli info`` and ``flowcli doctor`` report: versions, the weights' card and recipe, and a check of the
installation on the bundled example pair."""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

__all__ = ["EXAMPLE_FILES", "MAX_EXAMPLE_AEE", "Checks", "environment", "examples_dir", "run_example", "weights_card"]

EXAMPLE_FILES = ("frame_0001.png", "frame_0002.png", "frame_0001_true.flo")

#: The largest average endpoint error (px) on the example pair that ``doctor`` passes. The bundled weights give about
#: 0.2 px there with their recipe and 0.6 px with the plain network, zero flow 5.35 px: above 1 px the flow is
#: finite but wrong (other or untrained weights, a broken build or device), which is what doctor is run to find out.
MAX_EXAMPLE_AEE = 1.0


def environment() -> dict:
    """Versions of the tool and what it runs on."""
    import cv2
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
        env["ffmpeg"], env["ffmpeg_error"] = None, " ".join(str(exc).split())
    return env


def weights_card(weights: Optional[str] = None, hint: str = "pass weights=PATH") -> dict:
    """The checkpoint's card: where it is, its kind, metadata, registry entry and default recipe;
    ``{"available": False, "error": ...}`` when it cannot be loaded."""
    from flowcli.errors import CheckpointError, MissingWeightsError
    from flowcli.weights import bundled_entries, load_checkpoint

    card: dict = {"path": weights, "available": False}
    try:
        ckpt = load_checkpoint(weights)
    except MissingWeightsError as exc:
        card.update(path=exc.path, error=str(exc.with_hint(hint)))
        return card
    except (CheckpointError, FileNotFoundError) as exc:
        card["error"] = " ".join(str(exc).split())
        return card
    entry = ckpt.entry
    card.update(path=str(ckpt.path), available=True, kind=ckpt.kind, name=ckpt.name, recipe=ckpt.recipe.to_dict(),
                recipe_text=ckpt.recipe.describe(),
                presets_text={name: r.describe() for name, r in sorted(ckpt.presets.items())},
                entry=entry.name if entry else None,
                weight_sets={name: len(sd) for name, sd in sorted(ckpt.weight_sets.items())},
                meta={k: v for k, v in ckpt.meta.items() if k in ("name", "training_data", "steps", "train_step",
                                                                  "source", "date")})
    if entry is not None and entry.kind == "bundled":
        card["card_file"] = str(entry.path.with_name(entry.doc)) if entry.path.with_name(entry.doc).exists() else None
    elif entry is None and not weights and bundled_entries():
        card["card_file"] = None
    return card


def examples_dir() -> Path:
    """``$FLOWCLI_EXAMPLES_DIR``, else the shipped ``examples`` folder (:func:`flowcli.resources.data_dir`)."""
    from flowcli.resources import data_dir

    return data_dir("FLOWCLI_EXAMPLES_DIR", "examples")


@dataclass
class Checks:
    """Check results ``ok``/``fail``/``note``, each with what was checked and a detail."""

    items: list[dict] = field(default_factory=list)

    def add(self, status: str, what: str, detail: str = "") -> None:
        self.items.append({"check": what, "status": status, "detail": detail})

    @property
    def broken(self) -> bool:
        return any(c["status"] == "fail" for c in self.items)


def run_example(est, folder: Path, checks: Checks) -> dict:
    """Run the example pair twice (the first run includes one-off setup), check shape and finiteness, measure AEE
    against its true flow and the speed; adds checks and returns the figures. An AEE above
    :data:`MAX_EXAMPLE_AEE` is a failed ``accuracy`` check."""
    from flowcli.io import read_flow, read_image
    from flowcli.metrics import aee

    try:
        a, b = read_image(folder / EXAMPLE_FILES[0]), read_image(folder / EXAMPLE_FILES[1])
        truth, valid = read_flow(folder / EXAMPLE_FILES[2])
    except (ValueError, OSError) as exc:
        checks.add("fail", "example files", " ".join(str(exc).split()))
        return {}
    times, flow = [], None
    for _ in range(2):
        t0 = time.perf_counter()
        flow = est.estimate(a, b)
        times.append(time.perf_counter() - t0)
    h, w = a.shape[:2]
    problem = (f"flow shape: expected {(h, w, 2)}, got {flow.shape}" if flow.shape != (h, w, 2) else
               f"flow values: {int((~np.isfinite(flow)).sum())} non-finite numbers" if not np.isfinite(flow).all() else
               f"true flow: {folder / EXAMPLE_FILES[2]} is {truth.shape}, flow is {flow.shape}"
               if truth.shape != flow.shape else None)
    if problem:
        checks.add("fail", *problem.split(": ", 1))
        return {}
    err, zero = aee(flow, truth, valid), aee(np.zeros_like(truth), truth, valid)
    checks.add("ok", "flow", f"{w}x{h}, finite, AEE {err:.2f} px vs true flow (zero flow would give {zero:.2f} px)")
    checks.add("ok", "speed", f"{min(times):.3f} s per pair at {w}x{h} on {est.device} (first run {times[0]:.3f} s)")
    if not err <= MAX_EXAMPLE_AEE:
        checks.add("fail", "accuracy", f"AEE {err:.2f} px on the example pair is above the {MAX_EXAMPLE_AEE:g} px "
                                       f"a working installation stays under: wrong or untrained weights, or a broken "
                                       f"build or device?")
    elif err >= zero:
        checks.add("note", "accuracy", "no better than zero flow: untrained or wrong weights?")
    return {"aee_px": round(err, 4), "zero_flow_aee_px": round(zero, 4), "max_aee_px": MAX_EXAMPLE_AEE,
            "seconds_per_pair": round(min(times), 4), "device": str(est.device), "size": [w, h]}
