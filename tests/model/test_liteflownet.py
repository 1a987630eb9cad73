"""The network against the parity fixture of the original (random weights, per-unit intermediates)."""
import csv
from math import prod

import pytest
import torch

from flowcli.model import LiteFlowNet, build_liteflownet
from flowcli.model.layers import bilinear_upsampler
from flowcli.weights import internal_to_public, public_to_internal

UNITS = {"M": "matching", "S": "subpixel", "R": "regularization"}


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return torch.load(fixtures_dir / "liteflownet_parity_64x96.pt", weights_only=True)


@pytest.fixture(scope="module")
def net(fixture):
    model = LiteFlowNet()
    model.load_state_dict({public_to_internal(k): v for k, v in fixture["state_dict"].items()})
    return model.eval()


def test_parity_flow_and_all_intermediates(net, fixture):
    with torch.no_grad():
        out = net(fixture["image1_bgr"], fixture["image2_bgr"], return_all=True)
    assert (out["flow"] - fixture["flow"]).abs().max() < 1e-3
    for level in (6, 5, 4, 3, 2):
        for unit, name in UNITS.items():
            ref = fixture[f"intermediate_{name}_level{level}"]
            assert out[(level, unit)].shape == ref.shape
            assert (out[(level, unit)] - ref).abs().max() < 1e-4, (level, unit)


def test_batch_items_are_independent(net, fixture):
    a, b = fixture["image1_bgr"], fixture["image2_bgr"]
    batch1 = torch.cat([a, b.flip(3)])
    batch2 = torch.cat([b, a.flip(3)])
    with torch.no_grad():
        out = net(batch1, batch2)
        single = net(b.flip(3), a.flip(3))
    assert (out[0:1] - fixture["flow"]).abs().max() < 1e-3
    assert (out[1:2] - single).abs().max() < 1e-4


def test_parameter_count_and_key_layout(fixtures_dir):
    rows = list(csv.DictReader(open(fixtures_dir / "liteflownet_checkpoint_keys.tsv"), delimiter="\t"))
    net = LiteFlowNet()
    assert sum(p.numel() for p in net.parameters()) == 5_381_969
    public = {internal_to_public(k): tuple(v.shape) for k, v in net.state_dict().items()}
    assert public == {r["key"]: tuple(int(x) for x in r["shape"].split("x")) for r in rows}
    assert sum(prod(s) for s in public.values()) == 5_381_969


def test_fresh_network_has_caffe_fixed_initialisation():
    net = build_liteflownet()
    k = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(net.matching[0].upflow.weight[1, 0], torch.outer(k, k))
    assert net.matching[4].upflow is None and net.matching[2].upcorr is None
    assert (net.regularization[0].scale_x.weight == 1).all() and (net.regularization[0].scale_y.bias == 0).all()


def test_bilinear_deconvolution_is_interior_bilinear_upsampling():
    up = bilinear_upsampler(1)
    x = torch.randn(1, 1, 5, 6)
    with torch.no_grad():
        y = up(x)
    ref = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(y[..., 1:-1, 1:-1], ref[..., 1:-1, 1:-1])


def test_coarse_stage_output_and_gradients():
    net = build_liteflownet()
    x1, x2 = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    out = net(x1, x2, finest_level=4, return_all=True)
    assert out["flow"].shape == (2, 2, 8, 8)
    assert set(k for k in out if k != "flow") == {(l, u) for l in (6, 5, 4) for u in "MSR"}
    out["flow"].square().mean().backward()
    assert net.matching[4].main[0].weight.grad is not None and net.matching[0].main[0].weight.grad is None
    out = net(x1, x2, finest_level=6, skip_finest_r=True, return_all=True)
    assert set(k for k in out if k != "flow") == {(6, "M"), (6, "S")}


def test_smallest_input_is_finite():
    net = build_liteflownet().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert out.shape == (1, 2, 16, 16) and torch.isfinite(out).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_fixture(net, fixture):
    model = LiteFlowNet()
    model.load_state_dict(net.state_dict())
    model = model.cuda().eval()
    with torch.no_grad():
        out = model(fixture["image1_bgr"].cuda(), fixture["image2_bgr"].cuda()).cpu()
    assert (out - fixture["flow"]).abs().max() < 1e-2
