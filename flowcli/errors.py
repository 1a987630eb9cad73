"""The exceptions flowcli raises for problems with the user's input or environment (never for its own bugs).

Each carries the fields a front end needs to say what went wrong in its own words (the command line names its
options, the Python API its arguments), so no caller has to re-word a message by matching strings. All are
``ValueError``s, so plain ``except ValueError`` still catches them.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence

__all__ = ["CheckpointError", "FlowcliError", "GroundTruthError", "InputError", "MissingWeightsError",
           "OutputCollisionError", "SplitError"]


class FlowcliError(ValueError):
    """Base class: a one-line message (``str(exc)``) naming the file or setting and the problem."""


class InputError(FlowcliError):
    """A file that cannot be used: ``path`` and ``problem`` (the message is ``"path: problem"``)."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path, self.problem = str(path), problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(InputError):
    """A checkpoint that cannot be used (unreadable, refused, not a LiteFlowNet state dict)."""


class MissingWeightsError(CheckpointError):
    """No weights where the bundled ones should be (``path``); ``hint`` says how to pass others, in the caller's
    vocabulary (the API: ``weights=PATH``; the command line replaces it with its option)."""

    def __init__(self, path: str | os.PathLike, hint: str = "pass weights=PATH") -> None:
        self.hint = hint
        super().__init__(path, f"no bundled weights; {hint} (a public LiteFlowNet checkpoint or a flowcli checkpoint)")

    def with_hint(self, hint: str) -> "MissingWeightsError":
        return MissingWeightsError(self.path, hint)


class OutputCollisionError(FlowcliError):
    """An output that would replace an input or another output of the same run: ``output``, ``other`` and what the
    other one is (``"input"`` or ``"output"``)."""

    def __init__(self, output: str | os.PathLike, other: str | os.PathLike, other_is: str = "input") -> None:
        self.output, self.other, self.other_is = str(output), str(other), other_is
        same = os.path.abspath(self.output) == os.path.abspath(self.other)
        where = "" if same and self.output == self.other else f" {self.other}"
        super().__init__(f"{self.output}: output would replace the {other_is}{where}; choose another output path")


class SplitError(FlowcliError):
    """A dataset split name that the reader does not know: ``dataset``, ``split`` and the ``choices``."""

    def __init__(self, dataset: str, split: str, choices: Sequence[str]) -> None:
        self.dataset, self.split, self.choices = dataset, split, tuple(choices)
        super().__init__(f"{dataset}: unknown split {split!r}; expected one of {', '.join(self.choices)}")


class GroundTruthError(FlowcliError):
    """A pair without ground truth where nothing else would come of the run: ``dataset``, the ``expected`` location
    and ``hint`` (how to only write predictions, in the caller's vocabulary)."""

    def __init__(self, dataset: str, what: str, expected: str, *, hint: str = "give a submission folder",
                 detail: Optional[str] = None) -> None:
        self.dataset, self.what, self.expected, self.hint, self.detail = dataset, what, expected, hint, detail
        super().__init__(f"{dataset}: {what} has no ground truth (expected {expected}{detail or ''}); "
                         f"{hint} to only write predictions")

    def with_hint(self, hint: str) -> "GroundTruthError":
        return GroundTruthError(self.dataset, self.what, self.expected, hint=hint, detail=self.detail)
