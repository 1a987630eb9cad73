"""Helpers the tests share: textured images, frames and clips on disk, fake dataset trees in the official layouts
built from crops of the real pairs, and checks of the command line's one-line errors."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from flowcli.io import read_flow, read_image


REPO = Path(__file__).resolve().parents[1]


SHARED = Path(os.environ.get("FLOWCLI_SHARED", REPO.parent / "shared"))


def textured_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture (uint8), rich enough for flow to be well defined."""
    import cv2

    g = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    for scale in (4, 16, 64):
        small = g.random((max(2, h // scale + 2), max(2, w // scale + 2), 3)).astype(np.float32)
        img += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) / 3.0
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def write_image(path: Path, img: np.ndarray) -> None:
    """Write an image, creating its folder (the io writers do not create folders); for fake dataset trees."""
    from flowcli.io.image import write_image as _write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    _write_image(path, img)


def put_flow(path: Path, flow: np.ndarray, valid=None) -> None:
    """Write a flow file, creating its folder; for fake dataset trees."""
    from flowcli.io import write_flow

    path.parent.mkdir(parents=True, exist_ok=True)
    write_flow(path, flow, valid)


H, W = 64, 96  # small frames keep inference fast on a busy CPU


def shifted(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """The image translated by (dx, dy) with edge padding: a second frame with known motion."""
    return np.roll(np.roll(img, dy, axis=0), dx, axis=1)


def make_frames(folder: Path, n: int, *, names=None, h: int = H, w: int = W) -> list[Path]:
    """``n`` textured frames moving 1 px right per frame, written as PNG."""
    from flowcli.io import write_image

    folder.mkdir(parents=True, exist_ok=True)
    base = textured_image(h, w + n, seed=3)
    paths = []
    for i in range(n):
        p = folder / (names[i] if names else f"frame_{i + 1:04d}.png")
        write_image(p, base[:, i:i + w])
        paths.append(p)
    return paths


def write_clip(path: Path, n: int = 6, fps: float = 7, h: int = H, w: int = W) -> Path:
    """A short H.264 clip of a texture panning right, written with imageio."""
    import imageio.v2 as imageio

    base = textured_image(h, w + 2 * n, seed=5)
    with imageio.get_writer(str(path), fps=fps, codec="libx264", macro_block_size=1,
                            ffmpeg_log_level="error") as writer:
        for i in range(n):
            writer.append_data(base[:, 2 * i:2 * i + w])
    return path


def one_error_line(result) -> str:
    """The stderr of a failed run must be exactly one line ``error: ...``; returns it."""
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def files_in(folder: Path) -> list[str]:
    """All file names under ``folder`` (hidden ones included: a stray temporary file is a partial output)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ---- fake dataset trees: crops of the real pairs in each official layout
CROP_H, CROP_W = 40, 56  # distinct enough to tell pairs apart, cheap to write and read


def load_real(real_dir: Path) -> dict:
    """folder name -> (img1, img2, flow, valid) of each real pair."""
    out = {}
    for sub in sorted(p for p in Path(real_dir).iterdir() if p.is_dir()):
        gt = next(sub / g for g in ("gt.flo", "gt_flow_kitti.png") if (sub / g).exists())
        out[sub.name] = (read_image(next(sub.glob("img1.*"))), read_image(next(sub.glob("img2.*"))), *read_flow(gt))
    return out


def crop(real: dict, key: str, y: int, x: int, h: int = CROP_H, w: int = CROP_W):
    """(img1, img2, flow, valid) of a real pair cropped at (y, x); flow zeroed where not valid."""
    a, b, f, v = real[key]
    c = (slice(y, y + h), slice(x, x + w))
    flow = np.array(f[c])  # a copy: the real pairs are shared by every test of the session
    valid = np.ascontiguousarray(v[c])
    flow[~valid] = 0.0
    return np.ascontiguousarray(a[c]), np.ascontiguousarray(b[c]), flow, valid


def entry(img1, img2, gt, valid, occ=None, sequence=""):
    return {"img1": img1, "img2": img2, "gt": gt, "valid": valid, "occ": occ, "sequence": sequence}


def build_sintel(root: Path, real: dict, split: str = "training"):
    """Two scenes (3 and 2 frames), both passes, flow + occlusions (top rows) + invalid (left columns)."""
    expected = {}
    for s_idx, (scene, nframes) in enumerate((("alley_1", 3), ("bamboo_2", 2))):
        gts = [crop(real, "sintel_clean_alley_1_0001", 100 + 60 * s_idx + 9 * i, 300 + 13 * i)[2:]
               for i in range(1, nframes)]
        for pas in ("clean", "final"):
            key = f"sintel_{pas}_alley_1_0001"
            imgs = [crop(real, key, 30 + 80 * s_idx + 11 * i, 40 + 17 * i)[i % 2] for i in range(nframes)]
            for i, img in enumerate(imgs, start=1):
                write_image(root / split / pas / scene / f"frame_{i:04d}.png", img)
            for i in range(1, nframes):
                gt, _ = gts[i - 1]
                occ = np.zeros((CROP_H, CROP_W), bool)
                occ[: 6 + 2 * i] = True
                valid = np.ones((CROP_H, CROP_W), bool)
                valid[:, : 3 + i] = False
                expected[f"{pas}/{scene}/frame_{i:04d}"] = entry(imgs[i - 1], imgs[i], gt, valid, occ, scene)
        if split == "training":
            for i in range(1, nframes):
                gt, _ = gts[i - 1]
                e = expected[f"clean/{scene}/frame_{i:04d}"]
                put_flow(root / "training" / "flow" / scene / f"frame_{i:04d}.flo", gt)
                write_image(root / "training" / "occlusions" / scene / f"frame_{i:04d}.png",
                            np.repeat((e["occ"] * 255).astype(np.uint8)[..., None], 3, axis=2))
                write_image(root / "training" / "invalid" / scene / f"frame_{i:04d}.png",
                            np.repeat((~e["valid"] * 255).astype(np.uint8)[..., None], 3, axis=2))
    return root, expected, {}


def build_kitti(root: Path, real: dict, image_dir: str, split: str = "training"):
    """Three pairs; sparse ground truth from the real KITTI pair; flow_noc drops the top rows (= occluded)."""
    expected = {}
    for i in range(3):
        img1, img2, flow, valid = crop(real, "kitti15_000000", 240 + 20 * i, 200 + 150 * i)
        assert valid.sum() > 100  # the crop must hold some of KITTI's sparse ground truth
        name = f"{i:06d}_10"
        write_image(root / split / image_dir / f"{name}.png", img1)
        write_image(root / split / image_dir / f"{i:06d}_11.png", img2)
        noc = valid.copy()
        noc[: 5 + 3 * i] = False
        if split == "training":
            put_flow(root / "training" / "flow_occ" / f"{name}.png", flow, valid)
            put_flow(root / "training" / "flow_noc" / f"{name}.png", flow, noc)
        expected[name] = entry(img1, img2, flow, valid, valid & ~noc)
    return root, expected, {}


def build_chairs(root: Path, real: dict):
    """Three pairs with split labels 1 2 1: the train split holds the first and the third."""
    expected = {}
    for i in range(3):
        img1, img2, flow, valid = crop(real, f"chairs_flownet2_000000{i}", 50 + 30 * i, 60 + 40 * i)
        stem = f"{i + 1:05d}"
        write_image(root / "data" / f"{stem}_img1.ppm", img1)
        write_image(root / "data" / f"{stem}_img2.ppm", img2)
        put_flow(root / "data" / f"{stem}_flow.flo", flow)
        if i != 1:
            expected[stem] = entry(img1, img2, flow, valid)
    (root / "FlyingChairs_train_val.txt").write_text("1\n2\n1\n")
    return root, expected, {"split": "train"}


def build_middlebury(root: Path, real: dict):
    expected = {}
    for i, scene in enumerate(("Hydrangea", "RubberWhale")):
        img1, img2, flow, valid = crop(real, "middlebury_RubberWhale", 20 + 100 * i, 30 + 200 * i)
        write_image(root / "other-data" / scene / "frame10.png", img1)
        write_image(root / "other-data" / scene / "frame11.png", img2)
        put_flow(root / "other-gt-flow" / scene / "flow10.flo", flow, valid)
        expected[scene] = entry(img1, img2, flow, valid, sequence=scene)
    return root, expected, {}


def build_things(root: Path, real: dict):
    """One sequence (frames 6, 7, 8), both passes, left camera, PFM ground truth."""
    expected = {}
    seq = "TRAIN/A/0000"
    gts = [crop(real, "chairs_flownet2_0000001", 100 + 20 * k, 100 + 30 * k)[2] for k in range(2)]
    for pas in ("clean", "final"):
        imgs = [crop(real, f"sintel_{pas}_alley_1_0001", 200 + 10 * k, 500 + 20 * k)[k % 2] for k in range(3)]
        for k, img in enumerate(imgs):
            write_image(root / f"frames_{pas}pass" / seq / "left" / f"{6 + k:04d}.png", img)
        for k in range(2):
            expected[f"{pas}/{seq}/left/{6 + k:04d}"] = entry(imgs[k], imgs[k + 1], gts[k], np.ones((CROP_H, CROP_W), bool),
                                                               sequence=seq)
    for k in range(2):
        put_flow(root / "optical_flow" / seq / "into_future" / "left" / f"OpticalFlowIntoFuture_{6 + k:04d}_L.pfm",
                 gts[k])
    return root, expected, {}


def build_folder(root: Path, real: dict, names=("chairs_a", "chairs_b", "kitti15_x"), h: int = CROP_H, w: int = CROP_W):
    """One subfolder per pair (two .flo, one KITTI PNG with sparse ground truth)."""
    expected = {}
    sources = {"chairs_a": ("chairs_flownet2_0000000", 10, 10), "chairs_b": ("chairs_flownet2_0000002", 90, 200),
               "kitti15_x": ("kitti15_000000", 250, 400), "sintel_clean_a": ("sintel_clean_alley_1_0001", 50, 50),
               "sintel_final_a": ("sintel_final_alley_1_0001", 50, 50)}
    for name in names:
        key, y, x = sources[name]
        img1, img2, flow, valid = crop(real, key, y, x, h, w)
        write_image(root / name / "img1.png", img1)
        write_image(root / name / "img2.png", img2)
        if key.startswith("kitti"):
            put_flow(root / name / "gt_flow_kitti.png", flow, valid)
        else:
            put_flow(root / name / "gt.flo", flow, valid)
        expected[name] = entry(img1, img2, flow, valid, sequence=name.split("_")[0] if "sintel" not in name
                               else "_".join(name.split("_")[:2]))
    return root, expected, {}


BUILDERS = {
    "sintel": build_sintel,
    "kitti2012": lambda root, real: build_kitti(root, real, "colored_0"),
    "kitti2015": lambda root, real: build_kitti(root, real, "image_2"),
    "chairs": build_chairs,
    "middlebury": build_middlebury,
    "things": build_things,
    "folder": build_folder,
}


# ---- synthetic pairs
def backward_warp(img2: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """img2 sampled at x + flow(x) (bilinear): what frame 1 should look like."""
    h, w = flow.shape[:2]
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img2, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def photometric_errors(sample: dict) -> tuple:
    """(mean abs error of warped img2 vs img1 on visible valid pixels, same without warping)."""
    img1 = sample["img1"].astype(np.float32)
    warped = backward_warp(sample["img2"], sample["flow"]).astype(np.float32)
    keep = sample["valid"] & ~sample["occ"]
    err = np.abs(warped - img1).mean(axis=2)[keep].mean()
    raw = np.abs(sample["img2"].astype(np.float32) - img1).mean(axis=2)[keep].mean()
    return float(err), float(raw)
