"""Backward warping: bilinear, zeros outside, partial footprints not renormalised (spec §4.2)."""
import pytest
import torch

from flowcli.model.warp import backward_warp


def test_integer_shift_reproduces_image():
    x = torch.arange(5 * 6, dtype=torch.float32).view(1, 1, 5, 6) + 1
    flow = torch.zeros(1, 2, 5, 6)
    flow[:, 0] = 2.0  # sample two columns to the right
    flow[:, 1] = -1.0  # and one row up
    out = backward_warp(x, flow)
    torch.testing.assert_close(out[0, 0, 1:, :4], x[0, 0, :4, 2:])
    assert (out[0, 0, 0] == 0).all() and (out[0, 0, :, 4:] == 0).all()


def test_half_pixel_is_bilinear_and_border_not_renormalised():
    x = torch.tensor([[[[10.0, 20.0, 30.0]]]])
    flow = torch.zeros(1, 2, 1, 3)
    flow[:, 0] = 0.5
    out = backward_warp(x, flow)
    # interior: halfway between neighbours; last pixel: half its footprint is outside and counts as 0
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([15.0, 25.0, 15.0]))
    flow[:, 1] = 0.25  # a quarter of every footprint falls below the single row
    out = backward_warp(x, flow)
    torch.testing.assert_close(out[0, 0, 0], 0.75 * torch.tensor([15.0, 25.0, 15.0]))


def test_gradients_reach_image_and_flow():
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    flow = (torch.rand(1, 2, 6, 7, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(backward_warp, (x, flow))


def test_one_pixel_level_stays_finite():
    x = torch.randn(1, 3, 1, 1)
    out = backward_warp(x, torch.zeros(1, 2, 1, 1))
    torch.testing.assert_close(out, x)


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="Nx2xHxW"):
        backward_warp(torch.zeros(1, 3, 4, 4), torch.zeros(1, 2, 4, 5))
