"""What the batch commands (``dir``, ``video``, ``eval``) share to run under torchrun: this process's part of the job
(:func:`flowcli.distributed.join_ranks` on the rank's device) and a progress task that counts the whole job's work, so
that the bar of rank 0 shows every rank's progress. In a plain run both are what they would be without torchrun."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Optional, Union

from flowcli.cli.app import rate_text
from flowcli.cli.options import FlowSettings, rank_device


@contextmanager
def rank_group(flow: FlowSettings) -> Iterator:
    """:func:`flowcli.distributed.join_ranks` for the device the flow options give this rank."""
    from flowcli.distributed import join_ranks

    with join_ranks(rank_device(flow)) as job:
        yield job


class SharedTask:
    """A task of a rich progress bar advanced by the job-wide ``counter`` of ``job`` (a
    :class:`flowcli.distributed.RankGroup`); ``total`` may be a callable, asked again at each redraw (a total that
    depends on what the other ranks found, e.g. pairs left to do after a resume)."""

    def __init__(self, bar, job, name: str, total: Union[int, None, Callable[[], Optional[int]]],
                 counter: Optional[str] = None) -> None:
        self.bar, self.job, self.counter = bar, job, counter or name
        self._total = total
        self.task = bar.add_task(name, total=self._current_total())

    def _current_total(self) -> Optional[int]:
        return self._total() if callable(self._total) else self._total

    def advance(self, n: int = 1) -> None:
        done = self.job.advance(n, self.counter)
        self.bar.update(self.task, completed=done, total=self._current_total())

    def refresh(self) -> None:
        self.bar.update(self.task, completed=self.job.count(self.counter), total=self._current_total())

    def set_total(self, total: Optional[int]) -> None:
        self._total = total
        self.bar.update(self.task, total=total)


def score_share(app, task, ds, mid: str, est, **kwargs):
    """Evaluation: one method over this rank's pairs, advancing its progress task (the whole job's count; rate = pairs per
    wall-clock second)."""
    import time

    from flowcli.jobs.evaluation import evaluate, method_name

    t0, done = time.perf_counter(), [0]

    def on_item(item: dict) -> None:
        task.advance(1)
        done[0] += 1
        m = item["metrics"]
        if m is not None:
            aee = "no valid pixels" if m["aee"] is None else f"AEE {m['aee']:.3f}"
            app.verbose(f"{mid} {item['name']}: {aee} ({rate_text(done[0], time.perf_counter() - t0)})")

    return evaluate(ds, est, on_item=on_item, method=mid, label=method_name(est)[1], **kwargs)
