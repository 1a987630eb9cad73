"""Flow datasets, a built-in synthetic training set and training augmentation (numpy + OpenCV only).

Every dataset here is a plain indexable object (``len(ds)``, ``ds[i]``) whose items are sample
dicts in one format, whatever the source::

    {"img1": HxWx3 uint8 RGB, "img2": HxWx3 uint8 RGB,
     "flow": HxWx2 float32 or None (test splits), "valid": HxW bool or None,
     "occ": HxW bool or None (True = occluded in frame 2, where the dataset says so),
     "name": str (relative id, e.g. "final/alley_1/frame_0001" or "000000_10"),
     "sequence": str (scene or sequence; "" if none)}

Augmentation keeps this format (images stay uint8).  Nothing here imports torch, click, rich or
the model: the trainer wraps these objects in torch itself.  Note that torch's default collate
cannot batch ``None`` values, so a loader over a dataset without ``occ`` needs its own collate or
has to drop that key.

Contents (imported lazily, so ``flowcli.data.synthetic`` loads without ``flowcli.io``):

* :class:`SyntheticFlow` (``flowcli.data.synthetic``): procedural FlyingChairs-like pairs.
* :func:`augment_pair` (``flowcli.data.augment``): FlowNet2/LiteFlowNet-style augmentation.
* :data:`DATASETS`, :func:`open_dataset`, :func:`folder_group`, :func:`submission_path`,
  :func:`write_submission` and the reader classes (``flowcli.data.datasets``).
"""
from __future__ import annotations

import importlib

_LAZY = {
    "SyntheticFlow": "flowcli.data.synthetic",
    "render_pair": "flowcli.data.synthetic",
    "augment_pair": "flowcli.data.augment",
    "warp_pair": "flowcli.data.augment",
    "photometric": "flowcli.data.augment",
    "sample_transforms": "flowcli.data.augment",
    "DATASETS": "flowcli.data.datasets",
    "open_dataset": "flowcli.data.datasets",
    "folder_group": "flowcli.data.datasets",
    "submission_path": "flowcli.data.datasets",
    "write_submission": "flowcli.data.datasets",
    "FlowDataset": "flowcli.data.datasets",
    "Sintel": "flowcli.data.datasets",
    "Kitti2012": "flowcli.data.datasets",
    "Kitti2015": "flowcli.data.datasets",
    "FlyingChairs": "flowcli.data.datasets",
    "Middlebury": "flowcli.data.datasets",
    "FlyingThings3D": "flowcli.data.datasets",
    "FolderPairs": "flowcli.data.datasets",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'flowcli.data' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
