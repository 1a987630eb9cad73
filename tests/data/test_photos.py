"""scikit-image's sample photographs as textures (the `train` extra)."""
import numpy as np
import pytest

from flowcli.data import photos


def test_loads_every_listed_photo_as_rgb8():
    if photos.photo_dir() is None:
        pytest.skip("scikit-image (the train extra) is not installed")
    imgs = photos.load_photos()
    assert len(imgs) == len(photos.PHOTOS)
    for img in imgs:
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and min(img.shape[:2]) >= 256


def test_missing_scikit_image_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(photos, "photo_dir", lambda: None)
    with pytest.raises(RuntimeError, match=r"pip install 'flowcli\[train\]'"):
        photos.load_photos()


def test_missing_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(photos, "photo_dir", lambda: tmp_path)
    with pytest.raises(RuntimeError, match="astronaut.png: missing or unreadable"):
        photos.load_photos(["astronaut.png"])
