"""Natural-image textures for the synthetic training set, without downloads.

scikit-image ships a handful of photographs and scans inside its wheel (``skimage/data``). Random crops, scales,
rotations and colour changes of them give the procedural scenes of :mod:`flowcli.data.synthetic` the statistics
of real footage (sensor noise, shading, natural edges) that noise textures lack. Only the files are read (with
OpenCV); scikit-image itself is never imported. It is a training-only extra: ``pip install 'flowcli[train]'``.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np

__all__ = ["PHOTOS", "photo_dir", "load_photos"]

#: The photographs used (scikit-image 0.26 names): natural scenes, materials, microscopy and astronomy; the
#: synthetic charts, binary masks, text scans and the motion-blurred clock are left out.
PHOTOS = ("astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "coffee.png", "coins.png",
          "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png",
          "retina.jpg", "rocket.jpg")

_MISSING = "photo textures need scikit-image's sample photographs: pip install 'flowcli[train]'"


def photo_dir() -> Optional[Path]:
    """scikit-image's data folder, or None where scikit-image is not installed."""
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "data"
    return folder if folder.is_dir() else None


def load_photos(names: Sequence[str] = PHOTOS) -> list[np.ndarray]:
    """The photographs as HxWx3 uint8 RGB arrays (gray ones repeated to 3 channels), in ``names`` order.
    Raises RuntimeError naming the file where one is missing or unreadable."""
    folder = photo_dir()
    if folder is None:
        raise RuntimeError(_MISSING)
    out = []
    for name in names:
        path = folder / name
        img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
        if img is None:
            raise RuntimeError(f"{path}: missing or unreadable ({_MISSING})")
        out.append(np.ascontiguousarray(img[..., ::-1]))
    return out
