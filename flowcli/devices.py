"""The device and precision vocabulary, parsed in one place for every command and the Python API. torch is imported
only where a device is resolved, so that the command line can check its options without loading it."""
from __future__ import annotations

import re

__all__ = ["DEVICE_PATTERN", "PRECISIONS", "check_precision", "parse_device", "resolve_device"]

PRECISIONS = ("fp32", "fp16", "bf16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def parse_device(text: str) -> str:
    """``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` (case and spaces ignored), else a ValueError saying so."""
    value = str(text).strip().lower()
    if not DEVICE_PATTERN.match(value):
        raise ValueError(f"{text!r} is not a device (use auto, cpu, cuda or cuda:N)")
    return value


def resolve_device(device="auto"):
    """``"auto"`` -> CUDA when available, else CPU; ``"cpu"``, ``"cuda"``, ``"cuda:N"`` as given, checked against
    the machine; returns a ``torch.device``."""
    import torch

    if isinstance(device, torch.device):
        return device
    name = parse_device(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available (torch {torch.__version__})")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return dev


def check_precision(precision: str, device) -> str:
    """``precision`` if it is one of :data:`PRECISIONS` and runs on ``device`` (fp16 needs CUDA), else ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; on CPU use fp32 (or bf16)")
    return precision
