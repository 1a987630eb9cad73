"""flowcli.threads: bounded prefetching and a worker thread that stop cleanly on errors."""
from __future__ import annotations

import threading
import time

import pytest

from flowcli.threads import Worker, prefetch


def test_prefetch_is_bounded_and_propagates_errors():
    produced = []

    def gen():
        for i in range(100):
            produced.append(i)
            yield i

    it = prefetch(gen(), maxsize=2)
    assert next(it) == 0
    time.sleep(0.2)
    assert len(produced) <= 4  # one handed out, two queued, one waiting to be queued
    it.close()

    def bad():
        yield 1
        raise ValueError("frame 2 is broken")

    it = prefetch(bad())
    assert next(it) == 1
    with pytest.raises(ValueError, match="frame 2"):
        next(it)


def test_worker_runs_in_order_and_reports_errors():
    out = []
    with Worker(maxsize=2) as w:
        for i in range(5):
            w.submit(out.append, i)
    assert out == [0, 1, 2, 3, 4]

    def boom(x):
        raise OSError("disk full")

    w = Worker()
    w.submit(boom, 1)
    with pytest.raises(OSError, match="disk full"):
        w.close()
    assert not any(t.name == "worker" and t.is_alive() for t in threading.enumerate())
