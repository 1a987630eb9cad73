"""estimate_flow: the original pre/post-processing, input conversion, errors, batching."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flowcli.api import Estimator, adapted_size, check_scale, estimate_flow, estimate_flow_batch
from flowcli.model import LiteFlowNet
from flowcli.weights import public_to_internal
from tests.support import REPO, textured_image


@pytest.fixture(scope="module")
def fixture(fixtures_dir):
    return torch.load(fixtures_dir / "liteflownet_parity_64x96.pt", weights_only=True)


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory, fixture):
    path = tmp_path_factory.mktemp("w") / "network-default.pytorch"
    torch.save(fixture["state_dict"], path)
    return path


@pytest.fixture(scope="module")
def model(fixture):
    m = LiteFlowNet()
    m.load_state_dict({public_to_internal(k): v for k, v in fixture["state_dict"].items()})
    return m.eval()


def to_rgb8(bgr):
    return (bgr[0].flip(0).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_multiple_of_32_matches_network_output_upsampled(fixture, ckpt_path):
    img1, img2 = to_rgb8(fixture["image1_bgr"]), to_rgb8(fixture["image2_bgr"])
    flow = estimate_flow(img1, img2, weights=ckpt_path, device="cpu")
    assert flow.shape == (64, 96, 2) and flow.dtype == np.float32
    # the fixture images are floats; rounding them to uint8 moves the result a little
    ref = F.interpolate(fixture["flow"], size=(64, 96), mode="bilinear", align_corners=False)[0].permute(1, 2, 0).numpy()
    assert np.abs(flow - ref).mean() < 0.05


def written_out_pipeline(model, img1, img2, net_hw):
    """The original pipeline written out independently: BGR/255, resize to ``net_hw``, network, upsample to the
    image size, per-axis rescaling of the flow."""
    (h, w), (hn, wn) = img1.shape[:2], net_hw

    def prep(img):
        t = torch.from_numpy(img[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() * (1.0 / 255.0)
        return F.interpolate(t, size=(hn, wn), mode="bilinear", align_corners=False)

    with torch.no_grad():
        raw = model(prep(img1), prep(img2))
    ref = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False)
    ref[:, 0] *= w / wn
    ref[:, 1] *= h / hn
    return ref[0].permute(1, 2, 0).numpy()


def test_other_size_follows_original_pipeline(model):
    img1, img2 = textured_image(50, 70, 1), textured_image(50, 70, 2)
    flow = Estimator(model=model, device="cpu").estimate(img1, img2)
    np.testing.assert_allclose(flow, written_out_pipeline(model, img1, img2, (64, 96)), atol=1e-4)
    assert adapted_size(50, 70) == (64, 96) and adapted_size(436, 1024) == (448, 1024)


def test_scale_resizes_for_the_network_and_returns_input_pixels(model):
    """At scale 2 a 50x70 pair runs at 128x160 (100x140 rounded up) and the flow is rescaled from those pixels."""
    img1, img2 = textured_image(50, 70, 1), textured_image(50, 70, 2)
    flow = Estimator(model=model, device="cpu", scale=2).estimate(img1, img2)
    assert adapted_size(50, 70, 2) == (128, 160) and adapted_size(50, 70, 0.5) == (32, 64)
    assert flow.shape == (50, 70, 2)
    np.testing.assert_allclose(flow, written_out_pipeline(model, img1, img2, (128, 160)), atol=1e-4)
    # scale 1 is the original pipeline, bit for bit
    np.testing.assert_array_equal(Estimator(model=model, device="cpu", scale=1.0).estimate(img1, img2),
                                  Estimator(model=model, device="cpu").estimate(img1, img2))


def test_scale_is_checked(model):
    assert check_scale("1.5") == 1.5
    for bad in (0, 0.1, 5, float("nan"), "x", None):
        with pytest.raises(ValueError, match=r"scale must be .*\[0.25, 4\], got"):
            Estimator(model=model, device="cpu", scale=bad)


def test_bundled_weights_follow_a_known_shift_at_scales_1_and_2():
    """The bundled weights on an example frame translated by (3, -2): the flow is that shift in image pixels."""
    from flowcli.io import read_image

    img = read_image(REPO / "examples" / "frame_0001.png")
    moved = np.roll(np.roll(img, -2, axis=0), 3, axis=1)  # img2[y - 2, x + 3] = img1[y, x]
    img1, img2 = img[:160, :224], moved[:160, :224]
    for scale in (1, 2):
        inner = estimate_flow(img1, img2, device="cpu", scale=scale)[16:-16, 16:-16]  # away from the wrapped edges
        np.testing.assert_allclose(np.median(inner.reshape(-1, 2), axis=0), [3, -2], atol=0.15)
        assert np.abs(inner - [3, -2]).sum(axis=-1).mean() < 0.5, scale


def test_input_conversions(model):
    est = Estimator(model=model, device="cpu")
    rgb1, rgb2 = textured_image(64, 64, 3), textured_image(64, 64, 4)
    base = est.estimate(rgb1, rgb2)
    rgba = [np.dstack([im, np.full(im.shape[:2], 7, np.uint8)]) for im in (rgb1, rgb2)]
    np.testing.assert_array_equal(est.estimate(*rgba), base)
    wide = [im.astype(np.uint16) * 257 for im in (rgb1, rgb2)]
    np.testing.assert_array_equal(est.estimate(*wide), base)
    gray = [im[:, :, 1] for im in (rgb1, rgb2)]
    np.testing.assert_array_equal(est.estimate(*gray), est.estimate(*[np.dstack([g] * 3) for g in gray]))


def test_errors(model):
    est = Estimator(model=model, device="cpu")
    with pytest.raises(ValueError, match="differ in size: 64x48 vs 64x40"):
        est.estimate(textured_image(48, 64), textured_image(40, 64))
    with pytest.raises(ValueError, match="at least 32x32"):
        est.estimate(textured_image(20, 64), textured_image(20, 64))
    with pytest.raises(ValueError, match="shape"):
        est.estimate(np.zeros((40, 40, 5), np.uint8), np.zeros((40, 40, 5), np.uint8))
    with pytest.raises(ValueError, match="precision"):
        Estimator(model=model, device="cpu", precision="fp8")
    with pytest.raises(ValueError, match="device"):
        Estimator(model=model, device="tpu")


def test_batch_equals_singles(model, ckpt_path):
    pairs = [(textured_image(64, 96, i), textured_image(64, 96, i + 10)) for i in range(3)]
    pairs.append((textured_image(40, 50, 7), textured_image(40, 50, 8)))
    batched = estimate_flow_batch(pairs, weights=ckpt_path, device="cpu", batch_size=2)
    for (a, b), f in zip(pairs, batched):
        np.testing.assert_allclose(f, estimate_flow(a, b, weights=ckpt_path, device="cpu"), atol=1e-4)


def test_no_gradients_are_recorded(model):
    est = Estimator(model=model, device="cpu")
    out = est.flow_tensor(torch.from_numpy(textured_image(64, 64, 1))[None], torch.from_numpy(textured_image(64, 64, 2))[None])
    assert not out.requires_grad


def test_out_of_memory_falls_back_to_fp16_then_half_resolution(model, monkeypatch):
    est = Estimator(model=model, device="cpu")
    est.retry_oom = True  # what a CUDA estimator does
    calls = []
    real_run = est._run

    def fake_run(x1, x2, precision=None, weights=""):
        calls.append((precision or est.precision, tuple(x1.shape[2:])))
        if x1.shape[2] >= 64:  # anything at full size runs out of memory, in any precision
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_run(x1, x2, precision="fp32")  # CPU autocast has no fp16; numbers are not the point here

    monkeypatch.setattr(est, "_run", fake_run)
    with pytest.warns(RuntimeWarning) as record:
        flow = est.estimate(textured_image(64, 96, 1), textured_image(64, 96, 2))
    assert [str(w.message) for w in record] == ["CUDA out of memory at 96x64; retrying in fp16",
                                                "CUDA out of memory at 96x64; estimating at half resolution and upsampling the flow"]
    assert calls == [("fp32", (64, 96)), ("fp16", (64, 96)), ("fp16", (32, 64))]
    assert flow.shape == (64, 96, 2) and np.isfinite(flow).all()
    assert len(est.fallbacks) == 2 and "fp16" in est.fallbacks[0]


def test_cuda_graphs_need_cuda(model):
    with pytest.raises(ValueError, match="cuda_graphs needs a CUDA device, got cpu"):
        Estimator(model=model, device="cpu", cuda_graphs=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_replay_matches_eager(model):
    eager = Estimator(model=model, device="cuda")
    graphs = Estimator(model=model, device="cuda", cuda_graphs=True)
    for h, w, seed in ((64, 96, 1), (64, 96, 5), (96, 64, 9)):  # a replay with new data, then a new shape
        rgb1 = torch.from_numpy(textured_image(h, w, seed))[None]
        rgb2 = torch.from_numpy(textured_image(h, w, seed + 1))[None]
        torch.testing.assert_close(graphs.flow_tensor(rgb1, rgb2), eager.flow_tensor(rgb1, rgb2), atol=1e-4, rtol=1e-4)
    assert len(graphs._graphs) == 2


def test_compose_and_warp_back_are_exact_on_uniform_flows():
    """Frame 2 warped back by a whole-pixel flow is frame 1 where the sample stays inside; uniform flows compose by
    adding."""
    from flowcli.api import compose_flows, warp_back

    img1 = textured_image(40, 64, 2)
    img2 = np.roll(img1, 5, axis=1)  # img2[y, x + 5] = img1[y, x]
    flow = torch.zeros(1, 2, 40, 64)
    flow[:, 0] = 5.0
    back = warp_back(torch.from_numpy(img2[None]), flow)[0].numpy()
    np.testing.assert_array_equal(back[:, :59], img1[:, :59])
    a, b = torch.zeros(1, 2, 8, 8), torch.zeros(1, 2, 8, 8)
    a[:, 0], b[:, 1] = 2.0, -1.5
    np.testing.assert_allclose(compose_flows(a, b).numpy()[..., 2:6, 2:6], (a + b).numpy()[..., 2:6, 2:6])


def test_cascade_candidate_follows_a_motion_the_full_scale_pass_misses():
    """A 56 px translation: beyond what the bundled network follows at full scale, but the quarter-scale pass brings it
    within range and the full-scale pass on the warped-back frame finishes it (spec: coarse-to-fine stacking)."""
    from flowcli.io import read_image

    img = read_image(REPO / "examples" / "frame_0001.png")
    moved = np.roll(img, 56, axis=1)  # img2[y, x + 56] = img1[y, x]
    img1, img2 = img[:192, :288], moved[:192, :288]
    est = Estimator(None, device="cpu", recipe={"candidates": ["net@1", "net@0.25", "cascade@0.25"]})
    net1, net4, cascade = est.candidates([img1], [img2])[0]
    inner = (slice(24, -24), slice(24, -80))  # where the moved content is inside frame 2
    err = {name: np.hypot(f[..., 0] - 56, f[..., 1])[inner].mean()
           for name, f in (("net@1", net1), ("net@0.25", net4), ("cascade", cascade))}
    assert err["cascade"] < 1.0 < 5.0 < err["net@1"], err
    assert err["cascade"] < err["net@0.25"], err


def test_a_weight_set_candidate_runs_the_network_with_those_weights(tmp_path):
    """``net@S:NAME`` is the network with the checkpoint's weight set NAME: the same flow as an estimator loaded with
    those whole weights, and not the main weights' flow; a recipe naming a set the weights lack is refused up front."""
    from flowcli.weights import save_checkpoint, weight_set_delta

    torch.manual_seed(0)
    main = LiteFlowNet().state_dict()
    torch.manual_seed(1)
    other = {k: (v if k.startswith("matching.4.") else main[k]) for k, v in LiteFlowNet().state_dict().items()}
    save_checkpoint(tmp_path / "two.pt", main, {"name": "two"}, weight_sets={"large": weight_set_delta(main, other)})
    save_checkpoint(tmp_path / "other.pt", other, {"name": "other"})
    img1 = textured_image(64, 96)
    img2 = np.roll(img1, 3, axis=1)
    est = Estimator(tmp_path / "two.pt", device="cpu", precision="fp32",
                    recipe={"candidates": ["net@1", "net@0.5:large", "net@0.5"]})
    main1, large, main_half = est.candidates([img1], [img2])[0]
    alone = Estimator(tmp_path / "other.pt", device="cpu", precision="fp32", recipe={"candidates": ["net@0.5"]})
    np.testing.assert_allclose(large, alone.candidates([img1], [img2])[0][0], atol=1e-5)
    assert np.abs(large - main_half).max() > 1e-2
    with pytest.raises(ValueError, match="net@0.5:small: two carries no weight set 'small' \\(it carries: large\\)"):
        Estimator(tmp_path / "two.pt", device="cpu", recipe={"candidates": ["net@1", "net@0.5:small"]})
    with pytest.raises(ValueError, match="carries no weight set 'large' \\(it carries: none\\)"):
        Estimator(tmp_path / "other.pt", device="cpu", recipe={"candidates": ["net@0.5:large"]})


def test_a_recipe_that_aligns_follows_a_pan_far_beyond_the_network_everywhere_it_runs():
    """A 150 px pan: the bundled network alone loses it; with the pan taken out first the same network follows it, in
    ``estimate`` and in the batch engine of the folder and video jobs alike."""
    from flowcli.streaming import infer_batches
    from tests.postprocess.test_align import pan

    pairs = [pan(-140, 50, 192, 384, seed=s) for s in (3, 4)]
    inner = (slice(60, -60), slice(150, -150))
    plain = Estimator(None, device="cpu", recipe={"candidates": ["net@1"]})
    aligned = Estimator(None, device="cpu", recipe={"candidates": ["net@1"], "align": {}})

    def err(flow):
        return float(np.hypot(flow[..., 0] + 140, flow[..., 1] - 50)[inner].mean())

    assert err(plain.estimate(*pairs[0])) > 20
    flows = aligned.estimate_batch(pairs)
    assert max(err(f) for f in flows) < 0.5
    streamed = [f for _, f in infer_batches(aligned, [([0, 1], [a for a, _ in pairs], [b for _, b in pairs])])]
    np.testing.assert_allclose(streamed[0], flows[0], atol=1e-4)
    np.testing.assert_allclose(streamed[1], flows[1], atol=1e-4)


@pytest.mark.parametrize("length", [120, 200])
def test_the_bundled_default_recipe_follows_a_long_translation_of_a_real_frame(real_dir, length):
    """The translation sweep's bar: a real frame moved by ``length`` px along (3, 1) is followed to under 1 px AEE
    by the default recipe of the bundled weights (the candidates alone stop near 90 px)."""
    from flowcli.io import read_image

    img = read_image(next((real_dir / "middlebury_RubberWhale").glob("img1.*")))
    dx, dy = round(length * 3 / 10 ** 0.5), round(length / 10 ** 0.5)
    h, w = img.shape[0] - dy, img.shape[1] - dx  # two crops of the 388x584 frame, the second one moved
    img1, img2 = img[:h, :w], img[dy:dy + h, dx:dx + w]  # img2[y, x] = img1[y + dy, x + dx]: flow (-dx, -dy)
    est = Estimator(None, device="cpu")
    flow = est.estimate(np.ascontiguousarray(img1), np.ascontiguousarray(img2))
    inner = (slice(max(16, dy + 16), h - 16), slice(dx + 16, w - 16))  # pixels whose match is inside frame 2
    err = np.hypot(flow[..., 0] + dx, flow[..., 1] + dy)[inner].mean()
    assert err < 1.0, err
