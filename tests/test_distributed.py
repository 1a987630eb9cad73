"""flowcli.distributed: the world from the environment, shares, devices, the timeout, and (two real gloo processes)
how ranks settle: results gathered, a failed rank stops the others, a killed rank is noticed, a slow one is not."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from flowcli.distributed import ENV_TIMEOUT, RankGroup, World, join_ranks, timeout_seconds
from flowcli.frames import shard
from tests.support import REPO


def test_world_from_env():
    assert World.from_env({}) == World(0, 1, 0)
    assert World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    w = World.from_env({"RANK": "2", "WORLD_SIZE": "4"})  # no LOCAL_RANK: one machine
    assert (w.local_rank, w.enabled, w.is_main) == (2, True, False)
    assert World.from_env({"RANK": "", "WORLD_SIZE": " "}) == World()
    assert World.from_env({"RANK": "5", "LOCAL_RANK": "2"}) == World()  # no WORLD_SIZE: a plain run


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "two"}, {"WORLD_SIZE": "0"},
                                 {"RANK": "-1", "WORLD_SIZE": "2"}])
def test_world_from_env_refuses_nonsense(env):
    with pytest.raises(ValueError, match="RANK|WORLD_SIZE"):
        World.from_env(env)


def test_shares_tile_the_job_and_compose_with_shard():
    items = list(range(23))
    parts = [World(r, 3).share(items) for r in range(3)]
    assert sorted(sum(parts, [])) == items and parts[1] == shard(items, 1, 3)
    spans = [World(r, 4).span(10) for r in range(4)]
    assert spans[0][0] == 0 and spans[-1][1] == 10 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    # `--shard i/n` under torchrun: rank r of W does the pairs of shard (i + n r)/(n W)
    for r in range(2):
        assert World(r, 2).share(shard(items, 1, 3)) == shard(items, 1 + 3 * r, 6)


def test_rank_device(monkeypatch):
    import torch

    assert World().device("auto") == "auto" and World().device("cuda:1") == "cuda:1"  # a plain run: as given
    assert World(1, 2, 1).device("cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert World(1, 2, 1).device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert World(1, 4, 1).device("auto") == "cuda:1"
    assert World(3, 4, 3).device("cuda:0") == "cuda:1"  # the rank's own GPU, whatever the index asked
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert World(1, 2, 1).device("cuda") == "cuda:0"  # a launcher that shows each process one GPU


def test_timeout_from_env(monkeypatch):
    monkeypatch.delenv(ENV_TIMEOUT, raising=False)
    assert timeout_seconds() == 300 and timeout_seconds(default=None) is None
    monkeypatch.setenv(ENV_TIMEOUT, "2.5")
    assert timeout_seconds() == 2.5
    for bad in ("0", "-3", "soon", "inf"):
        monkeypatch.setenv(ENV_TIMEOUT, bad)
        with pytest.raises(ValueError, match=ENV_TIMEOUT):
            timeout_seconds()


def test_single_process_session_is_local(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with join_ranks("cpu") as job:
        assert job.world == World()
        assert job.advance(2, "pairs") == 2 and job.advance(3, "pairs") == 5 and job.count("pairs") == 5
        assert job.count("other") == 0
        job.check()
        job.settle()
        assert job.gather({"x": 1}) == [{"x": 1}]
    assert RankGroup(World()).gather(7) == [7]


WORKER = """
import json, os, signal, sys, time
from flowcli.distributed import RankFailure, join_ranks
mode, out = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
result = {}
t0 = time.time()  # a failure may reach this rank as early as its first advance
try:
    with join_ranks("cpu") as job:
        job.advance(rank + 1, "items")
        if mode == "fail" and rank == 1:
            raise ValueError("broken on purpose")
        if mode == "kill" and rank == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "ok" and rank == 0:
            time.sleep(1.5 * float(os.environ["FLOWCLI_DIST_TIMEOUT"]))  # rank 1 waits longer than the timeout
        t0 = time.time()  # from here on: how long the wait for the others took
        job.settle()
        result = {"gathered": job.gather({"rank": rank}), "items": job.count("items")}
except RankFailure as exc:
    result = {"error": str(exc), "waited": time.time() - t0}
except ValueError as exc:
    result = {"own": str(exc)}
with open(f"{out}/rank{rank}.json", "w") as f:
    json.dump(result, f)
"""


def free_port() -> int:
    with socket.socket() as s:  # a free port for the rendezvous (port 0 is not accepted there)
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(tmp_path, mode: str, timeout: float) -> dict:
    """Two gloo processes started by hand (no torchrun agent to stop the others): {rank: what it reported}."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", ENV_TIMEOUT: str(timeout)}
    procs = [subprocess.Popen([sys.executable, str(script), mode, str(tmp_path)], stderr=subprocess.PIPE, text=True,
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}) for r in range(2)]
    try:
        errs = [p.communicate(timeout=120)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    out = {}
    for r in range(2):
        path = tmp_path / f"rank{r}.json"
        assert path.exists() or mode == "kill", errs[r][-2000:]
        if path.exists():
            out[r] = json.loads(path.read_text())
    return out


@pytest.mark.slow
def test_ranks_gather_however_far_apart_they_finish(tmp_path):
    out = launch(tmp_path, "ok", timeout=3)
    for r in range(2):
        assert out[r]["gathered"] == [{"rank": 0}, {"rank": 1}]
        assert out[r]["items"] == 3  # 1 + 2: the counters are the job's


@pytest.mark.slow
def test_a_failed_rank_stops_the_others(tmp_path):
    t0 = time.time()
    out = launch(tmp_path, "fail", timeout=30)
    assert out[1] == {"own": "broken on purpose"}
    assert out[0]["error"] == "rank 1 failed: broken on purpose"
    assert time.time() - t0 < 25  # at once, not after the timeout


@pytest.mark.slow
def test_a_killed_rank_is_noticed_within_the_timeout(tmp_path):
    out = launch(tmp_path, "kill", timeout=2)
    assert list(out) == [0]
    assert out[0]["error"].startswith("rank 1 stopped responding (no sign of life for 2 s")
    assert 2 <= out[0]["waited"] < 15
