"""flowcli.streaming: batches in, flows out in order, the recipe's CPU part overlapping the network."""
import numpy as np
import pytest

from flowcli.recipe import Recipe
from flowcli.streaming import infer_batches


class FakeEstimator:
    """Candidates are the pair's index as a constant flow; the recipe's finish fails on index 3."""

    def __init__(self, device="cpu"):
        import torch

        self.device = torch.device(device)
        self.recipe = _Failing(Recipe(refine={}))
        self.calls = 0

    def candidates(self, imgs1, imgs2):
        self.calls += 1
        if any(int(a[0, 0, 0]) == 7 for a in imgs1):
            raise RuntimeError("out of memory (simulated)")
        return [[np.full(a.shape[:2] + (2,), float(a[0, 0, 0]), np.float32)] for a in imgs1]


class _Failing:
    def __init__(self, recipe):
        self.is_plain, self.scales, self.prepare = False, recipe.scales, recipe.prepare

    def finish(self, img1, img2, candidates, offset=(0, 0)):
        if int(img1[0, 0, 0]) == 3:
            raise ValueError("pair 3 cannot be refined")
        return candidates[0] + 0.5 + offset[0]


def batches(indices, size=2):
    imgs = [np.full((4, 5, 3), i, np.uint8) for i in indices]
    for k in range(0, len(imgs), size):
        chunk = list(range(k, min(k + size, len(imgs))))
        yield [indices[i] for i in chunk], [imgs[i] for i in chunk], [imgs[i] for i in chunk]


@pytest.mark.parametrize("overlap", [False, True])
def test_results_come_in_order_and_failures_stay_with_their_pairs(overlap):
    est = FakeEstimator()
    out = list(infer_batches(est, batches([0, 1, 2, 3, 4, 5, 6, 7, 8]), overlap=overlap))
    assert [item for item, _ in out] == list(range(9))
    for item, flow in out:
        if item == 3:
            assert isinstance(flow, ValueError) and "pair 3" in str(flow)
        elif item in (6, 7):  # their batch's network pass failed: both pairs fail, the job goes on
            assert isinstance(flow, RuntimeError)
        else:
            assert flow.shape == (4, 5, 2) and np.all(flow == item + 0.5)
    assert est.calls == 5


def test_an_interrupt_is_not_swallowed():
    class Stop(FakeEstimator):
        def candidates(self, imgs1, imgs2):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        list(infer_batches(Stop(), batches([0, 1]), overlap=True))
