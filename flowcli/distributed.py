"""Several processes on one job: the world a launcher describes, the process group, and how the ranks agree.

``torchrun`` (and Slurm with ``srun torchrun``, or any launcher that sets the same variables) starts one process per
GPU with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment.
:class:`World` reads them (a plain run is rank 0 of a world of 1); :func:`init_process_group` starts the process group
(gloo on the CPU, nccl on CUDA) only when the world has several processes; :func:`barrier`,
:func:`all_gather_object`, :func:`broadcast_object` and :func:`any_rank` are the collectives the jobs and the trainer
need, each a no-op or the identity in a world of 1.

A batch job over several ranks (:func:`join_ranks`, :class:`RankGroup`) needs more than collectives: ranks finish at
different times (a collective that waits for a slower rank would run into its timeout), and a rank that fails must
stop the others instead of leaving them waiting. So the ranks also talk through the launcher's key-value store:

* every rank posts its end (done, or failed with a one-line message), and :meth:`RankGroup.settle` waits for all of
  them with no limit on how long the others work, failing at once when a rank posts a failure;
* every rank beats (a counter in the store, from a background thread); a rank whose beat stops for
  ``FLOWCLI_DIST_TIMEOUT`` seconds (killed, out of memory, a lost node) is taken for dead, so the job fails instead
  of hanging;
* :meth:`RankGroup.advance` counts work in shared counters (the progress bar of rank 0 shows the whole job) and checks,
  about once a second, whether another rank failed, so the others stop mid-work.

The start-up rendezvous and the collectives time out after ``FLOWCLI_DIST_TIMEOUT`` seconds (default 300) in a
:func:`join_ranks`; the jobs call collectives only at the start (a barrier, so that a group that cannot work fails before
the work) and once every rank has settled, so a collective that times out means a rank died in between.

No click, rich or torch at import time (torch is imported when a process group is started).
"""
from __future__ import annotations

import datetime
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

__all__ = ["DEFAULT_TIMEOUT", "ENV_TIMEOUT", "RankFailure", "RankGroup", "World", "all_gather_object", "any_rank",
           "barrier", "broadcast_object", "destroy_process_group", "init_process_group", "join_ranks", "timeout_seconds"]

ENV_TIMEOUT = "FLOWCLI_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 300.0  # seconds
_POLL = 0.2  # seconds between looks at the other ranks while waiting for them
_CHECK_EVERY = 1.0  # seconds between checks for a failed rank while working

_RUNNING, _DONE, _FAILED = 0, 1, 2  # a rank's end counter: posting done adds 1, posting a failure adds 2


class RankFailure(RuntimeError):
    """Another rank failed or stopped responding: this rank stops too (its own outputs so far are complete)."""


def _int_env(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name, "")
    if not text.strip():
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not a whole number") from None


@dataclass(frozen=True)
class World:
    """Where this process stands: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None) -> "World":
        """The world from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``: rank 0 of 1 unless ``WORLD_SIZE`` is more
        than 1 (a stray ``RANK`` alone changes nothing); ValueError for values that do not make sense."""
        env = os.environ if environ is None else environ
        size = _int_env(env, "WORLD_SIZE", 1)
        if size == 1:
            return cls()
        rank = _int_env(env, "RANK", 0)
        local = _int_env(env, "LOCAL_RANK", rank if size > 1 else 0)
        if size < 1 or not 0 <= rank < size or local < 0:
            raise ValueError(f"RANK={rank}, WORLD_SIZE={size}, LOCAL_RANK={local} do not describe a process "
                             f"(need 0 <= RANK < WORLD_SIZE)")
        return cls(rank, size, local)

    @property
    def enabled(self) -> bool:
        """Whether there are other processes (a process group is needed)."""
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that reports and writes the job's shared outputs."""
        return self.rank == 0

    def share(self, items: Sequence) -> list:
        """This rank's items: those whose index ``k`` has ``k % size == rank`` (interleaved, so ranks get similar
        work; :func:`flowcli.frames.shard` with ``rank/size``)."""
        return [x for k, x in enumerate(items) if k % self.size == self.rank]

    def span(self, total: int) -> tuple[int, int]:
        """This rank's contiguous part ``[lo, hi)`` of ``range(total)``; the parts of all ranks tile it in order and
        differ in length by at most one."""
        return self.rank * total // self.size, (self.rank + 1) * total // self.size

    def device(self, requested: str = "auto") -> str:
        """The device this process should use for ``requested`` (auto, cpu, cuda, cuda:N): in a world of several
        processes any CUDA request (and auto on a machine with CUDA) means this rank's own GPU,
        ``cuda:LOCAL_RANK`` (modulo the GPUs it sees, for launchers that give each process one GPU); otherwise
        ``requested`` unchanged."""
        text = str(requested).strip().lower()
        if not self.enabled or text == "cpu":
            return text
        import torch

        if text == "auto" and not torch.cuda.is_available():
            return "cpu"
        count = torch.cuda.device_count()
        return f"cuda:{self.local_rank % count}" if count else text


def timeout_seconds(default: Optional[float] = DEFAULT_TIMEOUT) -> Optional[float]:
    """``FLOWCLI_DIST_TIMEOUT`` in seconds (``default`` when unset); ValueError unless it is a positive number."""
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{ENV_TIMEOUT}={text!r} must be a positive number of seconds")
    return value


# ------------------------------------------------------------------------------------------------ process group

def init_process_group(world: World, device: Any = "cpu", *, timeout: Optional[float] = None) -> bool:
    """Start the default process group for ``world`` (nccl when ``device`` is a CUDA device, which becomes this
    process's current device, else gloo), its collectives timing out after ``timeout`` seconds (None: torch's
    default). A no-op returning False in a world of 1 or when a group is already running (e.g. started by the
    caller's script)."""
    if not world.enabled:
        return False
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        return False
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ValueError(f"WORLD_SIZE is {world.size} but {' and '.join(missing)} not set; start the processes with "
                         f"torchrun (or set MASTER_ADDR and MASTER_PORT)")
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    kw = {"timeout": datetime.timedelta(seconds=timeout)} if timeout else {}
    dist.init_process_group("nccl" if dev.type == "cuda" else "gloo", rank=world.rank, world_size=world.size, **kw)
    return True


def destroy_process_group() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _group_running() -> bool:
    import sys

    if "torch.distributed" not in sys.modules:  # never imported: no group (and no torch import for a plain run)
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def barrier() -> None:
    """Wait for every rank (no-op without a process group)."""
    if _group_running():
        import torch.distributed as dist

        dist.barrier()


def all_gather_object(obj: Any) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank (``[obj]`` without a process group). Objects travel
    pickled."""
    if not _group_running():
        return [obj]
    import torch.distributed as dist

    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (``obj`` itself without a process group)."""
    if not _group_running():
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def any_rank(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (an all-reduce of the flag; ``flag`` without a group)."""
    if not _group_running():
        return bool(flag)
    import torch
    import torch.distributed as dist

    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    t = torch.tensor([int(bool(flag))], device=dev)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


# ------------------------------------------------------------------------------------------------ batch jobs

def _store_client(timeout: float):
    """A new connection to the launcher's key-value store (torchrun's agent, or rank 0's), keys under a prefix of
    this launch (a torchrun restart starts afresh)."""
    import torch.distributed as dist

    raw = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), is_master=False,
                        wait_for_workers=False, timeout=datetime.timedelta(seconds=timeout))
    return dist.PrefixStore(f"flowcli/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}/", raw)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, KeyboardInterrupt):
        return getattr(exc, "message", None) or "interrupted"
    return " ".join(str(exc).split()) or type(exc).__name__


class RankGroup:
    """This process's part in a batch job of ``world.size`` processes (see the module's notes).

    In a world of 1 everything is local: :meth:`advance` counts, :meth:`settle` returns at once and :meth:`gather`
    gives ``[obj]``. Use :func:`join_ranks`, which starts and ends it."""

    def __init__(self, world: World, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.world = world
        self.timeout = float(timeout)
        self._counts: dict[str, int] = {}
        self._store = None
        self._lock = threading.Lock()
        self._beating = threading.Event()
        self._beat_thread: Optional[threading.Thread] = None
        self._next_check = 0.0
        self._ns = ""

    # -- life cycle
    def start(self) -> None:
        """Connect to the store and start beating (the process group must be running). Each joining of a process
        gets its own keys, so that a script may run several jobs in one launch."""
        if not self.world.enabled:
            return
        self._store = _store_client(self.timeout)
        number = self._store.add(f"groups/{self.world.rank}", 1)  # the same on every rank running the same jobs
        self._ns = f"s{number}/"
        beat_store = _store_client(self.timeout)
        interval = min(1.0, self.timeout / 5)
        key = self._key(f"beat/{self.world.rank}")

        def beat() -> None:
            while True:
                try:
                    beat_store.add(key, 1)
                except Exception:  # noqa: BLE001 - the store is gone (the job is ending): nothing left to tell
                    return
                if self._beating.wait(interval):
                    return

        self._beat_thread = threading.Thread(target=beat, name="flowcli-beat", daemon=True)
        self._beat_thread.start()

    def close(self) -> None:
        self._beating.set()
        if self._beat_thread is not None:
            self._beat_thread.join(timeout=5)
            self._beat_thread = None

    def _key(self, name: str) -> str:
        return self._ns + name

    def _add(self, name: str, n: int) -> int:
        try:
            with self._lock:
                return int(self._store.add(self._key(name), n))
        except (RuntimeError, OSError) as exc:  # the store's host (torchrun's agent, or rank 0) has gone
            raise RankFailure(f"lost contact with the other ranks ({_one_line(exc)})") from None

    # -- progress and failures
    def advance(self, n: int = 1, counter: str = "progress") -> int:
        """Add ``n`` to the job-wide ``counter`` and return its total over all ranks so far; about once a second
        also :meth:`check`."""
        if self._store is None:
            self._counts[counter] = self._counts.get(counter, 0) + n
            return self._counts[counter]
        total = self._add(f"count/{counter}", n)
        if time.monotonic() >= self._next_check:
            self.check()
        return total

    def count(self, counter: str = "progress") -> int:
        """The job-wide ``counter`` (what every rank has added so far)."""
        return self._counts.get(counter, 0) if self._store is None else self._add(f"count/{counter}", 0)

    def check(self) -> None:
        """Raise :class:`RankFailure` when another rank has posted a failure."""
        if self._store is None:
            return
        self._next_check = time.monotonic() + _CHECK_EVERY
        if self._add("failures", 0) > 0:
            failed = [r for r in range(self.world.size) if r != self.world.rank and self._end(r) >= _FAILED]
            if failed:
                raise RankFailure(self._failure_text(failed))

    def fail(self, message: str) -> None:
        """Post this rank's failure (one line) so that the others stop; never raises."""
        if self._store is None:
            return
        try:
            with self._lock:
                self._store.set(self._key(f"error/{self.world.rank}"), message)
            self._add(f"end/{self.world.rank}", _FAILED)
            self._add("failures", 1)
        except Exception:  # noqa: BLE001 - the store is gone: the launcher is ending the job anyway
            pass

    def _end(self, rank: int) -> int:
        return self._add(f"end/{rank}", 0)

    def _failure_text(self, ranks: Sequence[int]) -> str:
        r = min(ranks)
        try:
            with self._lock:
                message = self._store.get(self._key(f"error/{r}")).decode("utf-8", "replace")
        except Exception:  # noqa: BLE001
            message = "failed"
        more = f" (and {len(ranks) - 1} other rank(s))" if len(ranks) > 1 else ""
        return f"rank {r} failed{more}: {message}"

    # -- the end of the work
    def settle(self, on_wait: Optional[Callable[[], None]] = None) -> None:
        """Post that this rank is done and wait, however long the others work, until every rank is done; raise
        :class:`RankFailure` as soon as one posts a failure or its beat stops for ``timeout`` seconds.
        ``on_wait()`` is called between looks (rank 0 redraws its progress bar there)."""
        if self._store is None:
            return
        me = self.world.rank
        self._add(f"end/{me}", _DONE)
        seen: dict[int, tuple[int, float]] = {}
        while True:
            ends = {r: self._end(r) for r in range(self.world.size) if r != me}
            failed = [r for r, e in ends.items() if e >= _FAILED]
            if failed:
                raise RankFailure(self._failure_text(failed))
            waiting = [r for r, e in ends.items() if e == _RUNNING]
            if not waiting:
                return
            now = time.monotonic()
            for r in waiting:
                beats = self._add(f"beat/{r}", 0)
                if r not in seen or seen[r][0] != beats:
                    seen[r] = (beats, now)
                elif now - seen[r][1] > self.timeout:
                    raise RankFailure(f"rank {r} stopped responding (no sign of life for {self.timeout:g} s; "
                                      f"{ENV_TIMEOUT} sets how long to wait)")
            if on_wait is not None:
                on_wait()
            time.sleep(_POLL)

    def gather(self, obj: Any) -> list:
        """``[obj of each rank]`` in rank order, on every rank; call it after :meth:`settle`."""
        return all_gather_object(obj) if self._store is not None else [obj]


def _first_collective(device: Any) -> None:
    """A barrier right after the start, so that a group that cannot work (NCCL refuses two ranks on one GPU) fails
    before the job's work rather than at its end."""
    import torch
    import torch.distributed as dist

    if dist.get_backend() != "nccl":
        dist.barrier()
        return
    try:
        dist.barrier(device_ids=[torch.cuda.current_device()])
    except RuntimeError as exc:
        raise RuntimeError(f"NCCL did not start on {device} ({_one_line(exc)[:300]}); every rank needs a GPU of its "
                           f"own (at most one process per GPU, or --device cpu)") from None


@contextmanager
def join_ranks(device: Any = "cpu", *, world: Optional[World] = None) -> Iterator[RankGroup]:
    """Run a batch job's part in this process: start the process group (for the rank's ``device``, see
    :meth:`World.device`) and a :class:`RankGroup`; on an error post the failure so the other ranks stop (a
    :class:`RankFailure` is not posted again); at the end stop the heartbeat and the group this call started.
    The timeout (collectives, silent ranks) is :func:`timeout_seconds`."""
    world = World.from_env() if world is None else world
    timeout = timeout_seconds()
    started = init_process_group(world, device, timeout=timeout)
    job = RankGroup(world, timeout=timeout)
    try:
        if started:
            _first_collective(device)
        job.start()
        yield job
    except BaseException as exc:
        if not isinstance(exc, RankFailure):
            job.fail(_one_line(exc))
            if world.enabled and world.is_main and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
                time.sleep(min(2 * _CHECK_EVERY, timeout))  # rank 0 hosts the store: let the others read why
        raise
    finally:
        job.close()
        if started:
            destroy_process_group()
