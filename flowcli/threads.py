"""Worker threads that stop cleanly on errors and interrupts: :func:`prefetch` runs an iterator in a thread behind a
bounded queue; :class:`Worker` runs jobs in a thread behind a bounded queue. Decoding, inference and writing overlap
while memory stays bounded (a few items per queue, whatever the job's length)."""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Iterable, Iterator, Optional

__all__ = ["ClosesOnExit", "Worker", "prefetch"]

_END = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> bool:
    """Put with a timeout loop so that a stopped consumer never leaves the producer blocked forever."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def prefetch(iterable: Iterable, maxsize: int = 4, name: str = "prefetch") -> Iterator:
    """Iterate ``iterable`` in a background thread, at most ``maxsize`` items ahead of the consumer.

    Exceptions raised by the iterable are re-raised in the consumer at the point they occurred. Closing the
    returned generator early (break, error, KeyboardInterrupt) stops the thread and closes the iterable.
    """
    q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
    stop = threading.Event()

    def run() -> None:
        it = iter(iterable)
        try:
            for item in it:
                if not _put(q, item, stop):
                    break
            else:
                _put(q, _END, stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            _put(q, _Failure(exc), stop)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()

    def consume() -> Iterator:
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.exc
                yield item
        finally:
            stop.set()
            thread.join(timeout=10)

    return consume()


class ClosesOnExit:
    """``with`` support for objects with ``close()`` (finish the work) and ``abort()`` (drop it): a block that
    ends normally closes, one that raises aborts, so an interrupted job never leaves a half-written result."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class Worker(ClosesOnExit):
    """One background thread running submitted jobs in order, behind a bounded queue.

    ``submit(fn, *args)`` blocks when ``maxsize`` jobs are waiting (back-pressure keeps memory bounded) and
    re-raises the first error a job raised. ``close()`` waits for the remaining jobs and re-raises a job's
    error; ``abort()`` drops the waiting jobs and waits only for the one running. As a context manager it
    closes on success and aborts on error.
    """

    def __init__(self, maxsize: int = 4, name: str = "worker") -> None:
        self._q: queue.Queue = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                job = self._q.get(timeout=0.1)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            if job is _END:
                return
            if self._stop.is_set() or self._error is not None:
                continue  # aborted or failed: drain without running
            fn, args = job
            try:
                fn(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the submitting thread
                self._error = exc

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            self._stop.set()
            raise exc

    def submit(self, fn: Callable, *args: Any) -> None:
        self._raise()
        if not _put(self._q, (fn, args), self._stop):
            raise RuntimeError("worker was stopped")

    def close(self) -> None:
        _put(self._q, _END, self._stop)
        self._thread.join()
        self._raise()

    def abort(self) -> None:
        self._stop.set()
        self._thread.join()
