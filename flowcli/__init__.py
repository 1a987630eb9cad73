"""flowcli: dense optical flow with LiteFlowNet (Hui, Tang, Loy, CVPR 2018), as a library and a command line.

The public API is imported lazily so that ``import flowcli.io`` stays free of torch.
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "estimate_flow": "flowcli.api",
    "estimate_flow_batch": "flowcli.api",
    "Estimator": "flowcli.api",
    "Recipe": "flowcli.recipe",
    "liteflownet": "flowcli.weights",
    "load_checkpoint": "flowcli.weights",
    "read_checkpoint": "flowcli.weights",
    "convert_public_checkpoint": "flowcli.weights",
    "read_flow": "flowcli.io",
    "write_flow": "flowcli.io",
    "read_image": "flowcli.io.image",
    "flow_to_color": "flowcli.viz",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flowcli' has no attribute {name!r}")
