"""Benchmark variants: the plain and the tuned path compute the same flow, differently."""
import pytest
import torch

from flowcli.bench import bench_estimator, variant_estimator
from tests.support import textured_image


def test_plain_and_tuned_paths_agree_and_differ_in_how():
    tuned = variant_estimator("tuned", device="cpu")
    eager = variant_estimator("eager", device="cpu")
    eager.model.load_state_dict(tuned.model.state_dict())
    assert [u.correlation_impl for u in eager.model.matching] == ["reference"] * 5
    assert [u.correlation_impl for u in tuned.model.matching] == ["matmul"] * 5
    assert tuned.channels_last and not eager.channels_last
    rgb1 = torch.from_numpy(textured_image(64, 96, 1))[None]
    rgb2 = torch.from_numpy(textured_image(64, 96, 2))[None]
    torch.testing.assert_close(tuned.flow_tensor(rgb1, rgb2), eager.flow_tensor(rgb1, rgb2), atol=1e-4, rtol=1e-4)


def test_bench_reports_the_run():
    r = bench_estimator(variant_estimator("tuned", device="cpu"), width=96, height=64, batch=2, repeats=1, warmup=0)
    assert (r.width, r.height, r.batch, r.variant, r.precision) == (96, 64, 2, "tuned", "fp32")
    assert r.pairs_per_s == pytest.approx(2 / (2 * r.seconds_per_pair))
    assert r.peak_rss_mb is None or r.peak_rss_mb > 50


def test_unknown_variant_and_correlation_are_refused():
    with pytest.raises(ValueError, match="variant must be tuned or eager, got 'fast'"):
        variant_estimator("fast")
    with pytest.raises(ValueError, match="correlation impl must be one of matmul, reference, got 'cuda'"):
        variant_estimator("tuned").model.set_correlation("cuda")
