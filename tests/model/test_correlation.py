"""The cost volume against a naive per-displacement, per-pixel definition (spec §4.1)."""
import pytest
import torch

from flowcli.model.correlation import correlation, correlation_reference, correlation_matmul


def naive(f0, f1, stride):
    """Straight from the definition: explicit loops, explicit bounds checks, no padding tricks."""
    n, c, h, w = f0.shape
    ho, wo = -(-h // stride), -(-w // stride)
    out = torch.zeros(n, 49, ho, wo, dtype=torch.float64)
    for b in range(n):
        for dyi in range(7):
            for dxi in range(7):
                dy, dx = (dyi - 3) * stride, (dxi - 3) * stride
                for y in range(ho):
                    for x in range(wo):
                        y0, x0 = y * stride, x * stride
                        y1, x1 = y0 + dy, x0 + dx
                        if 0 <= y1 < h and 0 <= x1 < w:
                            out[b, dyi * 7 + dxi, y, x] = (f0[b, :, y0, x0].double() * f1[b, :, y1, x1].double()).sum() / c
    return out


SHAPES = [(1, 3, 5, 7), (2, 4, 9, 6), (1, 2, 1, 1), (1, 5, 2, 11), (1, 1, 8, 8)]


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_naive_definition(shape, stride):
    g = torch.Generator().manual_seed(hash((shape, stride)) % 2 ** 31)
    f0, f1 = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    expected = naive(f0, f1, stride)
    for fn in (correlation_reference, correlation_matmul, correlation):
        got = fn(f0, f1, stride=stride)
        assert got.shape == expected.shape
        torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)


def test_row_bands_tiles_and_layout_do_not_change_the_result():
    f0, f1 = torch.randn(2, 6, 13, 10), torch.randn(2, 6, 13, 10)
    cl0, cl1 = (t.contiguous(memory_format=torch.channels_last) for t in (f0, f1))
    for stride in (1, 2):
        expected = correlation_reference(f0, f1, stride=stride)
        variants = [correlation_matmul(f0, f1, stride=stride, max_elements=1),  # one row per band
                    correlation_matmul(cl0, cl1, stride=stride)]
        variants += [correlation_matmul(f0, f1, stride=stride, tile=t) for t in (1, 3, 4, 32)]  # ragged, wider than W
        for got in variants:
            torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def test_channel_order_is_dy_major():
    # a single bright pixel in f1 two rows below and one column left of the centre lights exactly one channel
    f0 = torch.zeros(1, 1, 7, 7)
    f1 = torch.zeros(1, 1, 7, 7)
    f0[0, 0, 3, 3] = 1.0
    f1[0, 0, 5, 2] = 1.0
    out = correlation(f0, f1, stride=1)
    dy, dx = 2, -1
    assert out[0, (dy + 3) * 7 + (dx + 3), 3, 3] == 1.0
    assert out.sum() == 1.0


def test_gradients_match_reference():
    f0 = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    f1 = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    for stride in (1, 2):
        assert torch.autograd.gradcheck(lambda a, b: correlation_matmul(a, b, stride=stride), (f0, f1))
        g_ref = torch.autograd.grad(correlation_reference(f0, f1, stride=stride).square().sum(), (f0, f1))
        g_fast = torch.autograd.grad(correlation_matmul(f0, f1, stride=stride).square().sum(), (f0, f1))
        for a, b in zip(g_ref, g_fast):
            torch.testing.assert_close(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    f0, f1 = torch.randn(2, 16, 21, 17), torch.randn(2, 16, 21, 17)
    for stride in (1, 2):
        torch.testing.assert_close(correlation(f0.cuda(), f1.cuda(), stride=stride).cpu(),
                                   correlation_reference(f0, f1, stride=stride), atol=1e-5, rtol=1e-4)


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="one shape"):
        correlation(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 5))
    with pytest.raises(ValueError, match="stride"):
        correlation(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4), stride=3)
