"""Readers for the public optical-flow datasets in their official on-disk layouts (lazy, numpy only).

Each reader is a class taking ``(root, split, ...)``; it lists its pairs when built and reads files
only in ``ds[i]``, which returns a sample dict (see :mod:`flowcli.data`).  A missing root, a wrong
layout or missing ground truth raises a one-line ``FileNotFoundError``/``ValueError`` naming the
path it expected.  Every reader has ``name``, ``split``, ``metric_kind`` (``"sintel"``:
pixel-weighted, or ``"kitti"``: per-image; see :mod:`flowcli.metrics`) and ``has_gt``.

===========  =================================================================================
registry     layout under ``root`` (splits; default first)
===========  =================================================================================
sintel       ``training/{clean,final}/SCENE/frame_%04d.png``, ``training/flow/SCENE/frame_%04d.flo``,
             optional ``training/occlusions`` and ``training/invalid`` (white = occluded/invalid);
             ``test/{clean,final}/...`` without ground truth (training, test)
kitti2012    ``training/colored_0/%06d_10.png`` + ``_11.png``, ``training/flow_occ/%06d_10.png``,
             optional ``training/flow_noc``; ``testing/colored_0`` (training, testing)
kitti2015    as kitti2012 with ``image_2`` instead of ``colored_0``
chairs       ``data/%05d_img1.ppm``, ``%05d_img2.ppm``, ``%05d_flow.flo`` and
             ``FlyingChairs_train_val.txt`` (1 = train, 2 = validation) (train, val, all)
middlebury   ``other-data/SCENE/frame10.png``, ``frame11.png``, ``other-gt-flow/SCENE/flow10.flo``;
             ``eval-data/SCENE/...`` without ground truth (training, test)
things       ``frames_{clean,final}pass/TRAIN/A/0000/left/0006.png`` and
             ``optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0006_L.pfm``
             (train, test)
folder       one subfolder per pair with ``img1.*``, ``img2.*`` and optionally ``gt.flo`` or
             ``gt_flow_kitti.png`` (or ``gt.pfm``/``.npy``/``.npz``); or a single such folder
===========  =================================================================================

KITTI occlusion masks are derived: occluded = valid in ``flow_occ`` but not in ``flow_noc``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Type, Union

import numpy as np

from flowcli.io import IMAGE_EXTENSIONS, read_flow, write_flow
from flowcli.io.image import read_image
from flowcli.errors import SplitError

__all__ = [
    "FlowDataset",
    "Sintel",
    "Kitti2012",
    "Kitti2015",
    "FlyingChairs",
    "Middlebury",
    "FlyingThings3D",
    "FolderPairs",
    "DATASETS",
    "open_dataset",
    "folder_group",
    "submission_path",
    "write_submission",
]

PathLike = Union[str, Path]


@dataclass
class Pair:
    """Where one sample's files are (``flow`` None: no ground truth)."""

    img1: Path
    img2: Path
    name: str
    sequence: str = ""
    flow: Optional[Path] = None
    occ: Optional[Path] = None  # white = occluded
    invalid: Optional[Path] = None  # white = invalid (Sintel)
    flow_noc: Optional[Path] = None  # KITTI: valid here = not occluded


class FlowDataset:
    """Base class: a list of :class:`Pair` read lazily into sample dicts.

    Subclasses fill ``self.pairs`` in ``__init__``; ``len(ds)`` and ``ds[i]`` (negative indices
    allowed, IndexError beyond) come from here.
    """

    name = "dataset"
    layout = ""
    metric_kind = "sintel"

    def __init__(self, root: PathLike, split: str) -> None:
        self.root = Path(root)
        self.split = split
        self.pairs: List[Pair] = []
        self.has_gt = False

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        n = len(self.pairs)
        i = int(index)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} pairs")
        return self.load(self.pairs[i])

    def load(self, pair: Pair) -> dict:
        """Read one pair's files into a sample dict."""
        img1 = read_image(pair.img1)
        img2 = read_image(pair.img2)
        if img1.shape != img2.shape:
            raise ValueError(f"{self.name}: {pair.img1} is {img1.shape[1]}x{img1.shape[0]} but "
                             f"{pair.img2} is {img2.shape[1]}x{img2.shape[0]}")
        flow = valid = occ = None
        if pair.flow is not None:
            flow, valid = read_flow(pair.flow)
            if flow.shape[:2] != img1.shape[:2]:
                raise ValueError(f"{self.name}: {pair.flow} is {flow.shape[1]}x{flow.shape[0]} but "
                                 f"{pair.img1} is {img1.shape[1]}x{img1.shape[0]}")
            if pair.invalid is not None:
                valid = valid & ~_read_mask(pair.invalid, flow.shape[:2], self.name)
            if pair.occ is not None:
                occ = _read_mask(pair.occ, flow.shape[:2], self.name)
            if pair.flow_noc is not None:
                _, valid_noc = read_flow(pair.flow_noc)
                if valid_noc.shape != valid.shape:
                    raise ValueError(f"{self.name}: {pair.flow_noc} is {valid_noc.shape[1]}x{valid_noc.shape[0]} "
                                     f"but {pair.flow} is {valid.shape[1]}x{valid.shape[0]}")
                occ = valid & ~valid_noc
        return {"img1": img1, "img2": img2, "flow": flow, "valid": valid, "occ": occ,
                "name": pair.name, "sequence": pair.sequence}

    def _expected(self, path: Path, why: str = "") -> FileNotFoundError:
        """The one-line error for a path that should exist."""
        extra = f"{why}; " if why else ""
        return FileNotFoundError(f"{self.name}: expected {path} ({extra}{self.layout})")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, pairs={len(self)})"


def _read_mask(path: Path, shape: Tuple[int, int], ds: str) -> np.ndarray:
    m = read_image(path)[..., 0] > 127
    if m.shape != tuple(shape):
        raise ValueError(f"{ds}: mask {path} is {m.shape[1]}x{m.shape[0]}, expected {shape[1]}x{shape[0]}")
    return m


def _pick_split(ds: str, split: Optional[str], choices: Dict[str, str], default: str) -> str:
    """Map a user's split name (aliases allowed, case-insensitive) to the canonical one."""
    if split is None:
        return default
    key = str(split).lower()
    if key not in choices:
        raise SplitError(ds, split, list(choices))
    return choices[key]


def _pick_passes(ds: str, passes: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    if passes == "both":
        passes = ("clean", "final")
    items = (passes,) if isinstance(passes, str) else tuple(passes)
    bad = [p for p in items if p not in ("clean", "final")]
    if bad or not items:
        raise ValueError(f"{ds}: passes must be 'clean', 'final' or both, got {passes!r}")
    return items


def _frame_numbers(folder: Path, pattern: "re.Pattern[str]") -> List[int]:
    """Sorted frame numbers of the files in ``folder`` whose name matches ``pattern`` (one group)."""
    nums = []
    for entry in folder.iterdir():
        m = pattern.fullmatch(entry.name)
        if m:
            nums.append(int(m.group(1)))
    return sorted(nums)


def _listing(folder: Path) -> set:
    return {e.name for e in folder.iterdir()} if folder.is_dir() else set()


def _subdirs(folder: Path) -> List[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


# ------------------------------------------------------------------------------------------ Sintel


class Sintel(FlowDataset):
    """MPI-Sintel: consecutive frames of each scene, per pass.

    ``Sintel(root, split="training"|"test"|"clean"|"final", *, passes=("clean", "final"))`` (``"clean"`` and
    ``"final"`` mean that pass of the training split); ``root`` holds
    ``training/`` and/or ``test/``.  Names are ``PASS/SCENE/frame_%04d`` (the first frame), the
    sequence is the scene.  ``valid`` excludes ``training/invalid`` pixels when that folder exists;
    ``occ`` comes from ``training/occlusions`` when it exists (else None).
    """

    name = "sintel"
    metric_kind = "sintel"
    layout = "MPI-Sintel layout: training/{clean,final}/SCENE/frame_%04d.png, training/flow/SCENE/frame_%04d.flo"
    FRAME = re.compile(r"frame_(\d+)\.png")

    def __init__(self, root: PathLike, split: Optional[str] = None, *,
                 passes: Union[str, Sequence[str], None] = None) -> None:
        if split is not None and str(split).lower() in ("clean", "final"):
            # "--split final": the training split's final pass, the way the benchmark's tables name it
            if passes not in (None, "both") and _pick_passes(self.name, passes) != (str(split).lower(),):
                raise ValueError(f"{self.name}: split {split!r} is a pass; it contradicts passes={passes!r}")
            split, passes = "training", str(split).lower()
        split = _pick_split(self.name, split, {"training": "training", "train": "training", "test": "test",
                                               "clean": "training", "final": "training"}, "training")
        passes = ("clean", "final") if passes is None else passes
        super().__init__(root, split)
        self.passes = _pick_passes(self.name, passes)
        self.has_gt = split == "training"
        if not self.root.is_dir():
            raise self._expected(self.root / split / self.passes[0], "no such folder")
        for pas in self.passes:
            base = self.root / split / pas
            if not base.is_dir():
                raise self._expected(base)
            scenes = _subdirs(base)
            if not scenes:
                raise self._expected(base / "SCENE", f"no scene folders in {base}")
            for scene_dir in scenes:
                scene = scene_dir.name
                frames = _frame_numbers(scene_dir, self.FRAME)
                flow_dir = self.root / "training" / "flow" / scene
                occ_dir = self.root / "training" / "occlusions" / scene
                inv_dir = self.root / "training" / "invalid" / scene
                flows, occs, invs = _listing(flow_dir), _listing(occ_dir), _listing(inv_dir)
                have = set(frames)
                for n in frames:
                    if n + 1 not in have:
                        continue
                    pair = Pair(scene_dir / f"frame_{n:04d}.png", scene_dir / f"frame_{n + 1:04d}.png",
                                name=f"{pas}/{scene}/frame_{n:04d}", sequence=scene)
                    if self.has_gt:
                        fname = f"frame_{n:04d}.flo"
                        if fname not in flows:
                            raise self._expected(flow_dir / fname, f"ground truth for {pair.name}")
                        pair.flow = flow_dir / fname
                        mname = f"frame_{n:04d}.png"
                        if occ_dir.is_dir():
                            if mname not in occs:
                                raise self._expected(occ_dir / mname, f"occlusion mask for {pair.name}")
                            pair.occ = occ_dir / mname
                        if inv_dir.is_dir():
                            if mname not in invs:
                                raise self._expected(inv_dir / mname, f"invalid mask for {pair.name}")
                            pair.invalid = inv_dir / mname
                    self.pairs.append(pair)
        if not self.pairs:
            raise self._expected(self.root / split / self.passes[0] / "SCENE" / "frame_0001.png",
                                 "no consecutive frames found")


# ------------------------------------------------------------------------------------------- KITTI


class _Kitti(FlowDataset):
    """KITTI flow: ``%06d_10.png`` -> ``%06d_11.png``; ground truth is sparse (``valid``)."""

    metric_kind = "kitti"
    image_dir = ""
    ID = re.compile(r"(\d{6})_10\.png")

    def __init__(self, root: PathLike, split: Optional[str] = None) -> None:
        split = _pick_split(self.name, split, {"training": "training", "train": "training",
                                               "testing": "testing", "test": "testing"}, "training")
        super().__init__(root, split)
        self.has_gt = split == "training"
        img_dir = self.root / split / self.image_dir
        if not img_dir.is_dir():
            raise self._expected(img_dir)
        ids = _frame_numbers(img_dir, self.ID)
        if not ids:
            raise self._expected(img_dir / "000000_10.png", f"no %06d_10.png images in {img_dir}")
        images = _listing(img_dir)
        occ_dir = self.root / "training" / "flow_occ"
        noc_dir = self.root / "training" / "flow_noc"
        if self.has_gt and not occ_dir.is_dir():
            raise self._expected(occ_dir, "ground truth")
        flows, nocs = _listing(occ_dir), _listing(noc_dir)
        for i in ids:
            name = f"{i:06d}_10"
            if f"{i:06d}_11.png" not in images:
                raise self._expected(img_dir / f"{i:06d}_11.png", f"second frame of {name}")
            pair = Pair(img_dir / f"{name}.png", img_dir / f"{i:06d}_11.png", name=name)
            if self.has_gt:
                if f"{name}.png" not in flows:
                    raise self._expected(occ_dir / f"{name}.png", f"ground truth for {name}")
                pair.flow = occ_dir / f"{name}.png"
                if noc_dir.is_dir():
                    if f"{name}.png" not in nocs:
                        raise self._expected(noc_dir / f"{name}.png", f"non-occluded ground truth for {name}")
                    pair.flow_noc = noc_dir / f"{name}.png"
            self.pairs.append(pair)


class Kitti2012(_Kitti):
    """KITTI 2012 flow: ``Kitti2012(root, split="training"|"testing")``, colour images ``colored_0``."""

    name = "kitti2012"
    image_dir = "colored_0"
    layout = "KITTI 2012 layout: training/colored_0/%06d_10.png + _11.png, training/flow_occ/%06d_10.png"


class Kitti2015(_Kitti):
    """KITTI 2015 flow: ``Kitti2015(root, split="training"|"testing")``, images ``image_2``."""

    name = "kitti2015"
    image_dir = "image_2"
    layout = "KITTI 2015 layout: training/image_2/%06d_10.png + _11.png, training/flow_occ/%06d_10.png"


# ------------------------------------------------------------------------------------ FlyingChairs


class FlyingChairs(FlowDataset):
    """FlyingChairs: ``FlyingChairs(root, split="train"|"val"|"all", *, split_file=None)``.

    ``root`` is the release folder holding ``data/`` (or the ``data`` folder itself).  The split file
    (``FlyingChairs_train_val.txt``, one 1/2 per pair in id order) is looked for in ``root`` and
    ``root/data`` unless given; it is not needed for ``"all"``.  Names are ``%05d``.
    """

    name = "chairs"
    metric_kind = "sintel"
    layout = "FlyingChairs layout: data/%05d_img1.ppm, %05d_img2.ppm, %05d_flow.flo, FlyingChairs_train_val.txt"
    ID = re.compile(r"(\d+)_img1\.ppm")
    SPLIT_FILE = "FlyingChairs_train_val.txt"

    def __init__(self, root: PathLike, split: Optional[str] = None, *,
                 split_file: Optional[PathLike] = None) -> None:
        split = _pick_split(self.name, split, {"train": "train", "training": "train", "val": "val",
                                               "validation": "val", "all": "all"}, "train")
        super().__init__(root, split)
        self.has_gt = True
        data = self.root / "data"
        if not data.is_dir():
            if self.root.is_dir() and any(self.ID.fullmatch(p.name) for p in self.root.iterdir()):
                data = self.root  # given the data folder itself
            else:
                raise self._expected(data)
        ids = _frame_numbers(data, self.ID)
        if not ids:
            raise self._expected(data / "00001_img1.ppm", f"no %05d_img1.ppm images in {data}")
        width = len(next(p.name for p in data.iterdir() if self.ID.fullmatch(p.name)).split("_")[0])
        if split != "all":
            ids = self._select(ids, split, split_file, data)
        files = _listing(data)
        for i in ids:
            stem = f"{i:0{width}d}"
            for suffix in ("_img2.ppm", "_flow.flo"):
                if stem + suffix not in files:
                    raise self._expected(data / (stem + suffix))
            self.pairs.append(Pair(data / f"{stem}_img1.ppm", data / f"{stem}_img2.ppm", name=stem,
                                   flow=data / f"{stem}_flow.flo"))

    def _select(self, ids: List[int], split: str, split_file: Optional[PathLike], data: Path) -> List[int]:
        if split_file is not None:
            path = Path(split_file)
            if not path.is_file():
                raise self._expected(path, "split file")
        else:
            candidates = [self.root / self.SPLIT_FILE, data / self.SPLIT_FILE, data.parent / self.SPLIT_FILE]
            path = next((p for p in candidates if p.is_file()), None)
            if path is None:
                raise self._expected(candidates[0], "split file; or use split='all'")
        try:
            labels = [int(t) for t in path.read_text().split()]
        except ValueError:
            raise ValueError(f"{self.name}: {path} must hold one 1 (train) or 2 (val) per pair") from None
        if len(labels) != len(ids):
            raise ValueError(f"{self.name}: {path} has {len(labels)} entries but {data} has {len(ids)} pairs")
        want = 1 if split == "train" else 2
        return [i for i, lab in zip(ids, labels) if lab == want]


# -------------------------------------------------------------------------------------- Middlebury


class Middlebury(FlowDataset):
    """Middlebury: frame10 -> frame11 per scene; ``Middlebury(root, split="training"|"test")``.

    ``training`` lists the scenes of ``other-gt-flow`` (those with public ground truth) and reads
    their images from ``other-data``; ``test`` lists ``eval-data`` (no ground truth).  Names and
    sequences are the scene names.
    """

    name = "middlebury"
    metric_kind = "kitti"
    layout = "Middlebury layout: other-data/SCENE/frame10.png, frame11.png, other-gt-flow/SCENE/flow10.flo"

    def __init__(self, root: PathLike, split: Optional[str] = None) -> None:
        split = _pick_split(self.name, split, {"training": "training", "train": "training", "other": "training",
                                               "test": "test", "eval": "test"}, "training")
        super().__init__(root, split)
        self.has_gt = split == "training"
        if self.has_gt:
            gt_dir, img_dir = self.root / "other-gt-flow", self.root / "other-data"
            if not img_dir.is_dir():
                raise self._expected(img_dir)
            if not gt_dir.is_dir():
                raise self._expected(gt_dir, "ground truth")
            scenes = [d.name for d in _subdirs(gt_dir) if (d / "flow10.flo").is_file()]
            if not scenes:
                raise self._expected(gt_dir / "SCENE" / "flow10.flo", f"no ground truth in {gt_dir}")
        else:
            img_dir = self.root / "eval-data"
            if not img_dir.is_dir():
                raise self._expected(img_dir, "test images")
            scenes = [d.name for d in _subdirs(img_dir)]
        for scene in scenes:
            pair = Pair(img_dir / scene / "frame10.png", img_dir / scene / "frame11.png", name=scene, sequence=scene)
            for p in (pair.img1, pair.img2):
                if not p.is_file():
                    raise self._expected(p)
            if self.has_gt:
                pair.flow = self.root / "other-gt-flow" / scene / "flow10.flo"
            self.pairs.append(pair)
        if not self.pairs:
            raise self._expected(img_dir / "SCENE" / "frame10.png", f"no scenes in {img_dir}")


# --------------------------------------------------------------------------------- FlyingThings3D


class FlyingThings3D(FlowDataset):
    """FlyingThings3D (subset-free full release layout), forward flow of consecutive frames.

    ``FlyingThings3D(root, split="train"|"test", *, passes=("clean", "final"), cameras=("left",))``.
    Names are ``PASS/TRAIN/A/0000/left/0006``; the sequence is ``TRAIN/A/0000``.  Vectors of 1000 px
    or more (a few corrupt pixels in the release) are marked invalid.
    """

    name = "things"
    metric_kind = "sintel"
    layout = ("FlyingThings3D layout: frames_cleanpass/TRAIN/A/0000/left/0006.png, "
              "optical_flow/TRAIN/A/0000/into_future/left/OpticalFlowIntoFuture_0006_L.pfm")
    FRAME = re.compile(r"(\d+)\.png")
    MAX_FLOW = 1000.0

    def __init__(self, root: PathLike, split: Optional[str] = None, *,
                 passes: Union[str, Sequence[str]] = ("clean", "final"),
                 cameras: Union[str, Sequence[str]] = ("left",)) -> None:
        split = _pick_split(self.name, split, {"train": "TRAIN", "training": "TRAIN", "test": "TEST"}, "TRAIN")
        super().__init__(root, split)
        self.passes = _pick_passes(self.name, passes)
        self.cameras = (cameras,) if isinstance(cameras, str) else tuple(cameras)
        if not self.cameras or any(c not in ("left", "right") for c in self.cameras):
            raise ValueError(f"{self.name}: cameras must be 'left' and/or 'right', got {cameras!r}")
        self.has_gt = True
        flow_root = self.root / "optical_flow" / split
        if self.root.is_dir() and not flow_root.is_dir():
            raise self._expected(flow_root, "ground truth")
        for pas in self.passes:
            base = self.root / f"frames_{pas}pass" / split
            if not base.is_dir():
                raise self._expected(base)
            for letter_dir in _subdirs(base):
                for seq_dir in _subdirs(letter_dir):
                    seq = f"{split}/{letter_dir.name}/{seq_dir.name}"
                    for cam in self.cameras:
                        self._add_sequence(pas, seq, seq_dir / cam, flow_root / letter_dir.name / seq_dir.name
                                           / "into_future" / cam, cam)
        if not self.pairs:
            raise self._expected(self.root / f"frames_{self.passes[0]}pass" / split / "A" / "0000" / self.cameras[0]
                                 / "0006.png", "no consecutive frames found")

    def _add_sequence(self, pas: str, seq: str, img_dir: Path, flow_dir: Path, cam: str) -> None:
        if not img_dir.is_dir():
            raise self._expected(img_dir)
        frames = _frame_numbers(img_dir, self.FRAME)
        have = set(frames)
        flows = _listing(flow_dir)
        tag = "L" if cam == "left" else "R"
        for n in frames:
            if n + 1 not in have:
                continue
            fname = f"OpticalFlowIntoFuture_{n:04d}_{tag}.pfm"
            if fname not in flows:
                raise self._expected(flow_dir / fname, f"ground truth for {seq}/{cam}/{n:04d}")
            self.pairs.append(Pair(img_dir / f"{n:04d}.png", img_dir / f"{n + 1:04d}.png",
                                   name=f"{pas}/{seq}/{cam}/{n:04d}", sequence=seq, flow=flow_dir / fname))

    def load(self, pair: Pair) -> dict:
        sample = super().load(pair)
        flow, valid = sample["flow"], sample["valid"]
        big = (np.abs(flow) >= self.MAX_FLOW).any(axis=2)
        if big.any():
            sample["valid"] = valid & ~big
            flow[big] = 0.0
        return sample


# ------------------------------------------------------------------------------------------ folder

_GT_NAMES = ("gt.flo", "gt_flow_kitti.png", "gt.pfm", "gt.npy", "gt.npz")


class FolderPairs(FlowDataset):
    """Pairs stored one per subfolder: ``SUB/img1.*``, ``SUB/img2.*`` and optional ground truth.

    ``FolderPairs(root)`` (``split`` must be None): each subfolder holding ``img1.*`` is a pair; a
    ``root`` that itself holds ``img1.*`` is a single pair.  Ground truth is the first present of
    ``gt.flo``, ``gt_flow_kitti.png``, ``gt.pfm``, ``gt.npy``, ``gt.npz``.  ``name`` is the
    subfolder's name and ``sequence`` its :func:`folder_group`.  ``has_gt`` is True when every pair
    has ground truth.  Metrics are per image (``"kitti"``): the pairs are unrelated and of any size.
    """

    name = "folder"
    metric_kind = "kitti"
    layout = "folder layout: one subfolder per pair with img1.*, img2.* and optionally gt.flo or gt_flow_kitti.png"

    def __init__(self, root: PathLike, split: Optional[str] = None) -> None:
        if split not in (None, "", "all"):
            raise ValueError(f"{self.name}: has no splits, got split={split!r}")
        super().__init__(root, "all")
        if not self.root.is_dir():
            raise self._expected(self.root / "PAIR" / "img1.png", "no such folder")
        if _find_image(self.root, "img1") is not None:
            folders = [self.root]
        else:
            folders = [d for d in _subdirs(self.root) if _find_image(d, "img1") is not None]
        for d in folders:
            img1 = _find_image(d, "img1")
            img2 = _find_image(d, "img2")
            if img2 is None:
                raise self._expected(d / "img2.png", f"second frame beside {img1.name}")
            gt = next((d / g for g in _GT_NAMES if (d / g).is_file()), None)
            self.pairs.append(Pair(img1, img2, name=d.name, sequence=folder_group(d.name), flow=gt))
        if not self.pairs:
            raise self._expected(self.root / "PAIR" / "img1.png", f"no subfolder of {self.root} holds img1.*")
        self.has_gt = all(p.flow is not None for p in self.pairs)


def _find_image(folder: Path, stem: str) -> Optional[Path]:
    for ext in IMAGE_EXTENSIONS:
        for e in (ext, ext.upper()):
            p = folder / f"{stem}{e}"
            if p.is_file():
                return p
    return None


_PASSES = ("clean", "final")


def folder_group(name: str) -> str:
    """The group of a folder-layout pair name: its first ``_`` token, plus the pass for Sintel-like
    names: ``chairs_flownet2_0000001 -> chairs``, ``sintel_clean_alley_1_0001 -> sintel_clean``,
    ``kitti15_000000 -> kitti15``, ``middlebury_RubberWhale -> middlebury``."""
    tokens = name.split("_")
    if len(tokens) > 1 and tokens[1].lower() in _PASSES:
        return f"{tokens[0]}_{tokens[1]}"
    return tokens[0]


# ---------------------------------------------------------------------------------------- registry

DATASETS: Dict[str, Type[FlowDataset]] = {
    "sintel": Sintel,
    "kitti2012": Kitti2012,
    "kitti2015": Kitti2015,
    "chairs": FlyingChairs,
    "middlebury": Middlebury,
    "things": FlyingThings3D,
    "folder": FolderPairs,
}


def open_dataset(name: str, root: PathLike, split: Optional[str] = None, **kw) -> FlowDataset:
    """Build the reader registered as ``name`` (see :data:`DATASETS`) over ``root``.

    ``split`` None takes the dataset's default (Sintel/KITTI/Middlebury: training; Chairs/Things:
    train); extra keywords go to the class (e.g. ``passes="final"`` for Sintel and Things).
    """
    key = str(name).lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    return DATASETS[key](root, split, **kw)


def submission_path(dataset: Union[str, FlowDataset], sample: dict) -> str:
    """Relative path (POSIX string) of a sample's flow in a benchmark submission.

    Sintel: ``PASS/SCENE/frame_%04d.flo``; KITTI: the first frame's name as 16-bit PNG, e.g.
    ``000000_10.png``; anything else: ``NAME.flo``.  ``dataset`` is a reader or a registry name.
    """
    key = dataset if isinstance(dataset, str) else dataset.name
    name = str(sample["name"])
    if key in ("kitti2012", "kitti2015"):
        return f"{name}.png"
    return f"{name}.flo"


def write_submission(out_dir: PathLike, dataset: Union[str, FlowDataset], sample: dict, flow: np.ndarray) -> Path:
    """Write ``flow`` for ``sample`` at ``out_dir / submission_path(...)`` (folders created); returns the path."""
    path = Path(out_dir) / submission_path(dataset, sample)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_flow(path, flow)
    return path
