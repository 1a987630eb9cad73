"""dir, eval and video under torchrun (two CPU processes, gloo): the same files and results as a plain run, rank 0
alone reporting, and a failing rank failing the job instead of hanging it.

The plain runs go through the in-process runner on one thread (the ranks run with OMP_NUM_THREADS=1; the thread
count changes the last bits of the flow) and --batch-size 1 (so does a batch's make-up)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from flowcli.io import read_flow
from tests.support import H, REPO, W, files_in, make_frames, put_flow, shifted, textured_image, write_image

SAME = ["--device", "cpu", "--batch-size", "1"]


def free_port() -> int:
    with socket.socket() as s:  # a free port for the rendezvous (port 0 is not accepted there)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, script=None, timeout: float = 240, **env) -> subprocess.CompletedProcess:
    """``torchrun --nproc_per_node=2 -m flowcli ARGS`` (or ``SCRIPT ARGS``) on the CPU."""
    target = [str(script)] if script else ["-m", "flowcli"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={free_port()}",
           *target, *(str(a) for a in args)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def same_files(a, b) -> None:
    assert files_in(a) == files_in(b) and files_in(a)
    for name in files_in(a):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.slow
def test_dir_under_torchrun_equals_a_plain_run(invoke, tmp_path, weights_file, one_thread):
    frames = tmp_path / "frames"
    make_frames(frames, 6)
    (frames / "frame_0004.png").write_bytes(b"not a png")  # pairs 2 (rank 0) and 3 (rank 1) fail
    args = [frames, "--weights", weights_file, *SAME, "--json"]
    plain = invoke("dir", *args, "-o", tmp_path / "plain")
    assert plain.exit_code == 1, plain.stderr
    r = torchrun("dir", *args, "-o", tmp_path / "ranks")
    assert r.returncode != 0, r.stderr[-3000:]
    same_files(tmp_path / "plain", tmp_path / "ranks")
    expected, got = json.loads(plain.stdout), json.loads(r.stdout)  # rank 0's summary alone on stdout
    assert got.pop("ranks") == 2
    for doc in (expected, got):
        doc.pop("seconds"), doc.pop("output")
    assert got == expected and (got["written"], got["failed"]) == (3, 2)
    # each rank reports its own failed pair; rank 0 the whole job's count, and only it exits non-zero
    assert "rank 0: failed: frame_0003.png -> frame_0004.png" in r.stderr
    assert "rank 1: failed: frame_0004.png -> frame_0005.png" in r.stderr
    assert "rank 0: error: 2 of 5 pairs failed" in r.stderr and "rank 1: error" not in r.stderr
    assert r.stderr.count("3 of 5 pairs written") == 1


def synthetic_folder(root, n: int = 5):
    """``n`` pairs in the folder layout (NAME/img1.png, img2.png, gt.flo), each a texture moved by a known shift."""
    for k in range(n):
        name = f"{'ab'[k % 2]}_{k}"
        img1 = textured_image(H, W, seed=10 + k)
        dx, dy = k % 3 - 1, 2 - k % 2
        write_image(root / name / "img1.png", img1)
        write_image(root / name / "img2.png", shifted(img1, dx, dy))
        put_flow(root / name / "gt.flo", np.broadcast_to(np.float32([dx, dy]), (H, W, 2)).copy())
    return root


@pytest.mark.slow
def test_eval_under_torchrun_equals_a_plain_run(invoke, tmp_path, weights_file, one_thread):
    root = synthetic_folder(tmp_path / "pairs")
    args = ["eval", "--dataset", "folder", "--root", root, "--weights", weights_file, *SAME, "--baseline", "dis",
            "--with-model", "--per-sequence", "--write-submission"]
    plain = invoke(*args, tmp_path / "sub-plain", "--json", tmp_path / "plain.json", "--markdown",
                   tmp_path / "plain.md")
    assert plain.exit_code == 0, plain.stderr
    r = torchrun(*args, tmp_path / "sub-ranks", "--json", tmp_path / "ranks.json", "--markdown",
                 tmp_path / "ranks.md")
    assert r.returncode == 0, r.stderr[-3000:]
    expected, got = (json.loads((tmp_path / f"{x}.json").read_text()) for x in ("plain", "ranks"))
    for doc in (expected, got):
        doc.pop("date")
        for res in doc["methods"].values():
            res.pop("seconds"), res.pop("seconds_per_pair"), res.pop("submission_dir")
    assert got == expected  # summary, per sequence and per image (in the pairs' order) alike
    assert [im["name"] for im in got["methods"]["liteflownet"]["per_image"]] == ["a_0", "a_2", "a_4", "b_1", "b_3"]

    def table(path):  # the Markdown tables without the s/pair column and the caption's date
        return [ln.rsplit("|", 2)[0] for ln in path.read_text().splitlines() if ln.startswith("|")]

    assert table(tmp_path / "ranks.md") == table(tmp_path / "plain.md")
    same_files(tmp_path / "sub-plain", tmp_path / "sub-ranks")
    assert r.stderr.count("AEE") == plain.stderr.count("AEE") > 0  # one table, from rank 0


FAILING = """
import os, sys
if os.environ["RANK"] == "1":  # rank 1's reading breaks down
    import flowcli.jobs.folder as folder

    def broken(*args, **kwargs):
        raise OSError("disk on fire (on purpose)")

    folder.run_folder = broken
from flowcli.cli import main
main(sys.argv[1:], prog_name="flowcli")
"""


@pytest.mark.slow
def test_a_failing_rank_fails_the_job_instead_of_hanging_it(tmp_path, weights_file):
    frames = tmp_path / "frames"
    make_frames(frames, 5)
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    t0 = time.time()
    r = torchrun("dir", frames, "-o", tmp_path / "out", "--weights", weights_file, "--device", "cpu",
                 script=script, FLOWCLI_DIST_TIMEOUT="20")
    assert r.returncode != 0
    assert "rank 1: error: disk on fire (on purpose)" in r.stderr
    assert time.time() - t0 < 60
    assert all(read_flow(tmp_path / "out" / f)[0].shape == (H, W, 2) for f in files_in(tmp_path / "out"))


@pytest.mark.slow
def test_video_under_torchrun_writes_the_flow_files_of_a_plain_run(invoke, clip, tmp_path, weights_file, one_thread):
    args = ["video", clip, "--weights", weights_file, *SAME, "--side-by-side"]
    plain = invoke(*args, "--flo-dir", tmp_path / "plain", "--viz", tmp_path / "plain.mp4", "--json")
    assert plain.exit_code == 0, plain.stderr
    r = torchrun(*args, "--flo-dir", tmp_path / "ranks", "--viz", tmp_path / "ranks.mp4", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    same_files(tmp_path / "plain", tmp_path / "ranks")  # 000000.flo ... numbered in the whole clip
    expected, got = json.loads(plain.stdout), json.loads(r.stdout)
    assert got["pairs"] == expected["pairs"] == 5 and got["max_flow"] == expected["max_flow"]  # one normalization
    assert (tmp_path / "ranks.mp4").read_bytes() == (tmp_path / "plain.mp4").read_bytes()


def test_video_viz_without_flo_dir_is_a_usage_error_under_torchrun(invoke, clip, tmp_path, weights_file, monkeypatch):
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        monkeypatch.setenv(name, value)
    r = invoke("video", clip, "--viz", tmp_path / "v.mp4", "--weights", weights_file)
    assert r.exit_code == 2
    assert "under torchrun --viz needs --flo-dir" in r.stderr and r.stderr.startswith("rank 0: error: ")
