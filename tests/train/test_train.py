"""The trainer: the loss falls, resume is exact, stage transitions, export, and DDP keeps ranks identical."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowcli.model import build_liteflownet
from flowcli.train import Stage, TrainConfig, apply_overrides, export_weights, load_config, train
from flowcli.train import loop
from flowcli.train.loop import copy_from_coarser, is_fixed, set_trainable
from flowcli.train.loss import charbonnier, multiscale_loss, resample_label
from flowcli.weights import read_checkpoint


def tiny_config(**kw):
    base = dict(stages=[Stage(finest_level=6, skip_finest_r=True, steps=3, lr=2e-4),
                        Stage(finest_level=5, steps=3, lr=2e-4)],
                crop=[64, 96], batch=2, checkpoint_every=1, log_every=1, validate_every=0, workers=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


def losses(run_dir):
    return [json.loads(line)["loss"] for line in open(Path(run_dir) / "metrics.jsonl")]


def test_loss_falls_on_a_fixed_set(tmp_path):
    cfg = tiny_config(stages=[Stage(finest_level=5, steps=50, lr=1e-3)], data_length=2, augment_strength=0.0, batch=2)
    train(cfg, tmp_path / "run", device="cpu")
    seq = losses(tmp_path / "run")
    assert len(seq) == 50
    # the Charbonnier eps puts a floor under the loss: weight * pixels * sqrt(0.01) for each of the 6 outputs
    floor = 3 * (0.32 * 2 * 3 + 0.08 * 4 * 6) * 0.1
    first, last = sum(seq[:5]) / 5 - floor, sum(seq[-5:]) / 5 - floor
    assert last < 0.5 * first, (first, last)


def test_resume_reproduces_uninterrupted_run(tmp_path):
    cfg = tiny_config()
    train(cfg, tmp_path / "straight", device="cpu")
    train(cfg, tmp_path / "resumed", device="cpu", max_steps=2)  # interrupted inside stage 0
    train(cfg, tmp_path / "resumed", device="cpu", max_steps=2)  # ... and again across the stage boundary
    train(cfg, tmp_path / "resumed", device="cpu")
    assert len(losses(tmp_path / "straight")) == 6
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")


def test_resume_after_a_crash_between_checkpoints_keeps_one_record_per_step(tmp_path):
    cfg = tiny_config(checkpoint_every=2)
    train(cfg, tmp_path / "straight", device="cpu")

    class Crash(Exception):
        pass

    def crash_at_3(record):
        if record["step"] == 3:  # logged, but the last checkpoint is step 2's
            raise Crash

    with pytest.raises(Crash):
        train(cfg, tmp_path / "crashed", device="cpu", on_log=crash_at_3)
    with open(tmp_path / "crashed" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 4, "lo')  # a record cut short by the kill
    assert torch.load(tmp_path / "crashed" / "last.pt", weights_only=True)["step"] == 2
    train(cfg, tmp_path / "crashed", device="cpu")
    steps = [json.loads(line)["step"] for line in open(tmp_path / "crashed" / "metrics.jsonl")]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert losses(tmp_path / "crashed") == losses(tmp_path / "straight")


def test_stage_trains_only_its_units_and_keeps_fixed_tensors():
    net = build_liteflownet()
    set_trainable(net, Stage(finest_level=5, steps=1))
    names = {n for n, p in net.named_parameters() if p.requires_grad}
    assert "matching.3.main.0.weight" in names and "regularization.3.main.0.weight" in names
    assert "matching.2.main.0.weight" not in names  # level 4 not yet active
    assert "features.levels.0.0.weight" in names
    assert not any(is_fixed(n) for n in names)
    assert is_fixed("matching.0.upflow.weight") and is_fixed("regularization.4.dist.0.bias")
    set_trainable(net, Stage(finest_level=6, steps=1, skip_finest_r=True))
    assert not net.regularization[4].main[0].weight.requires_grad


def test_new_level_copies_matching_shapes_from_coarser():
    net = build_liteflownet()
    copied = copy_from_coarser(net, 5)
    assert copied > 0
    torch.testing.assert_close(net.matching[3].main[0].weight, net.matching[4].main[0].weight)
    # S input widths differ between levels 6 and 5: left as initialised
    assert net.subpixel[3].main[0].weight.shape != net.subpixel[4].main[0].weight.shape


def test_loss_is_zero_penalty_at_ground_truth():
    # a linear ramp: a symmetric filter keeps it exact away from the border, sampled at the coarse pixel centres
    xs = torch.arange(48, dtype=torch.float32)
    flow = torch.stack([xs.expand(32, 48), 3 * torch.ones(32, 48)])[None].repeat(2, 1, 1, 1)
    valid = torch.ones(2, 32, 48, dtype=torch.bool)
    label, mask = resample_label(flow, valid, (16, 24))
    centres = torch.arange(24, dtype=torch.float32) * 2 + 0.5
    # scaled by 1/20 and not rescaled per level (flows are full-resolution pixels / 20, spec §0)
    torch.testing.assert_close(label[0, 0, 5, 2:-2], centres[2:-2] / 20)
    torch.testing.assert_close(label[0, 1], torch.full((16, 24), 3 / 20))
    valid[:, :, :24] = False
    _, mask = resample_label(flow, valid, (16, 24))
    assert not mask[:, 0, :, :11].any() and mask[:, 0, :, 13:].all()
    # at the labels themselves only the eps floor remains: sqrt(0.01) per pixel, summed, / batch
    loss = charbonnier(label, label, mask)
    assert loss.item() == pytest.approx(16 * 24 * 0.1, rel=1e-5)
    assert charbonnier(label + 1, label, mask).item() > loss.item()
    outputs = {(6, "M"): torch.zeros(2, 2, 1, 2, requires_grad=True)}
    multiscale_loss(outputs, flow, valid).backward()
    assert outputs[(6, "M")].grad.abs().sum() > 0


def test_export_records_finest_level(tmp_path):
    cfg = tiny_config()
    train(cfg, tmp_path / "run", device="cpu", max_steps=4)
    dst = export_weights(tmp_path / "run", tmp_path / "w.pt", name="tiny", meta={"hardware": "test"})
    ckpt = read_checkpoint(dst)
    assert ckpt.meta["finest_level"] == 5 and ckpt.meta["train_step"] == 4 and ckpt.meta["hardware"] == "test"
    from flowcli.api import Estimator
    from tests.support import textured_image
    est = Estimator(dst, device="cpu")
    assert est.finest_level == 5
    flow = est.estimate(textured_image(64, 96, 1), textured_image(64, 96, 2))
    assert flow.shape == (64, 96, 2) and torch.isfinite(torch.from_numpy(flow)).all()


WORKER = """
import sys, torch
from flowcli.train import Stage, TrainConfig, train
cfg = TrainConfig(stages=[Stage(finest_level=6, steps=3, lr=1e-3)], crop=[64, 96], batch=2, checkpoint_every=10,
                  log_every=1, validate_every=0, workers=0, threads=1)
import torch.distributed as dist
calls = []
def stop():  # only rank 1's 'clock' runs out, after step 2: both replicas must stop there together
    calls.append(1)
    return dist.get_rank() == 1 and len(calls) >= 2
res = train(cfg, sys.argv[1], device="cpu", stop=stop)
torch.save(res.model.state_dict(), f"{sys.argv[1]}/rank{dist.get_rank()}.pt")
"""


def test_ddp_two_cpu_processes_keep_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path / "run"
    with socket.socket() as s:  # a free port for the rendezvous (port 0 is not accepted there)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                           str(script), str(run_dir)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = torch.load(run_dir / "rank0.pt", weights_only=True)
    b = torch.load(run_dir / "rank1.pt", weights_only=True)
    fresh = build_liteflownet().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["matching.4.main.0.weight"], fresh["matching.4.main.0.weight"])  # it did train
    assert len(losses(run_dir)) == 2  # of 3: one rank's stop request stopped both
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 2


def test_bf16_autocast_trains_with_fp32_weights(tmp_path):
    cfg = tiny_config(stages=[Stage(finest_level=5, steps=30, lr=1e-3)], data_length=2, augment_strength=0.0)
    result = train(TrainConfig(**{**cfg.__dict__, "precision": "bf16"}), tmp_path / "bf16", device="cpu")
    train(cfg, tmp_path / "fp32", device="cpu", max_steps=1)
    seq = losses(tmp_path / "bf16")
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
    assert seq[0] != losses(tmp_path / "fp32")[0]  # the forward pass really ran in bf16
    assert sum(seq[-5:]) < sum(seq[:5])


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_is_bf16_only_where_native(monkeypatch, native):
    monkeypatch.setattr(loop, "native_bf16", lambda device: native)
    assert loop.resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert loop.resolve_precision("fp32", torch.device("cpu")) == "fp32"


def test_explicit_bf16_on_emulating_hardware_warns_and_is_kept(monkeypatch):
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    with pytest.warns(RuntimeWarning, match='precision = "bf16" on cpu, which has no native bfloat16'):
        assert loop.resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_auto_precision_trains_in_fp32_without_native_bf16(monkeypatch, tmp_path):
    # the recipe says "auto": on a CPU without native bf16 the run must be the fp32 run, step for step
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    cfg = tiny_config(stages=[Stage(finest_level=5, steps=3, lr=1e-3)], data_length=2, augment_strength=0.0)
    train(TrainConfig(**{**cfg.__dict__, "precision": "auto"}), tmp_path / "auto", device="cpu")
    train(cfg, tmp_path / "fp32", device="cpu")
    records = [json.loads(line) for line in open(tmp_path / "auto" / "metrics.jsonl")]
    assert {r["precision"] for r in records} == {"fp32"}
    assert losses(tmp_path / "auto") == losses(tmp_path / "fp32")


def test_config_rejects_unknown_precision():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16, auto, got 'fp8'"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1}], "precision": "fp8"})


def test_photo_textures_reach_the_batches():
    from flowcli.data.photos import photo_dir
    from flowcli.train.data import BatchStream

    if photo_dir() is None:
        pytest.skip("scikit-image (the train extra) is not installed")
    plain = BatchStream(tiny_config()).batch(0)
    photo = BatchStream(tiny_config(photo_textures=1.0)).batch(0)
    assert photo["img1"].shape == plain["img1"].shape and not torch.equal(photo["img1"], plain["img1"])
    torch.testing.assert_close(BatchStream(tiny_config(photo_textures=1.0)).batch(0)["img1"], photo["img1"])
    # the same share set on a stage only: photos in that stage's batches, the other stage as without photos
    staged = tiny_config(stages=[Stage(finest_level=6, steps=1), Stage(finest_level=5, steps=1, photo_textures=1.0)])
    torch.testing.assert_close(BatchStream(staged).batch(0)["img1"], plain["img1"])
    assert not torch.equal(BatchStream(staged).batch(1)["img1"], BatchStream(tiny_config()).batch(1)["img1"])
    with pytest.raises(ValueError, match=r"photo_textures must be in \[0, 1\], got 2"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1}], "photo_textures": 2})


def test_weight_average_resumes_exactly_and_is_exported(tmp_path):
    cfg = tiny_config(ema_decay=0.9)
    train(cfg, tmp_path / "straight", device="cpu")
    train(cfg, tmp_path / "resumed", device="cpu", max_steps=2)  # stops inside stage 0
    train(cfg, tmp_path / "resumed", device="cpu")
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["ema"]["updates"] == b["ema"]["updates"] == 3  # restarted when stage 1 began
    for k, v in a["ema"]["tensors"].items():
        torch.testing.assert_close(b["ema"]["tensors"][k], v, rtol=0, atol=0)
    key = "matching.3.main.0.weight"  # trained in stage 1: the average lags behind the weights
    assert not torch.equal(a["ema"]["tensors"][key], a["model"][key])
    export_weights(tmp_path / "straight", tmp_path / "avg.pt", name="avg", half=False)
    export_weights(tmp_path / "straight", tmp_path / "raw.pt", name="raw", half=False, average=False)
    avg, raw = read_checkpoint(tmp_path / "avg.pt"), read_checkpoint(tmp_path / "raw.pt")
    assert avg.meta["weight_average"] == {"decay": 0.9, "updates": 3} and raw.meta["weight_average"] is None
    internal = {k: v for k, v in avg.state_dict.items() if "matching" in k}
    assert any(not torch.equal(v, raw.state_dict[k]) for k, v in internal.items())


def test_weight_average_goes_on_across_stages_that_train_the_same_levels(tmp_path):
    same = [Stage(finest_level=5, steps=3, lr=2e-4), Stage(finest_level=5, steps=3, lr=1e-4)]
    cfg = tiny_config(stages=same, ema_decay=0.9)
    train(cfg, tmp_path / "straight", device="cpu")
    train(cfg, tmp_path / "resumed", device="cpu", max_steps=3)  # stops exactly at the stage boundary
    train(cfg, tmp_path / "resumed", device="cpu")
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "last.pt", weights_only=True)
    assert a["ema"]["updates"] == b["ema"]["updates"] == 6  # not restarted at step 3
    for k, v in a["ema"]["tensors"].items():
        torch.testing.assert_close(b["ema"]["tensors"][k], v, rtol=0, atol=0)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "straight")
    # where a level is added it restarts (the test above: 3 updates after the 6 -> 5 boundary)


def test_weight_average_starts_warm_from_init_weights_inside_a_stage(tmp_path):
    cfg = tiny_config(stages=[Stage(finest_level=5, steps=6, lr=2e-4)], ema_decay=0.9)
    train(cfg, tmp_path / "first", device="cpu", max_steps=3)
    export_weights(tmp_path / "first", tmp_path / "init.pt", name="init", half=False)
    init = read_checkpoint(tmp_path / "init.pt").state_dict
    cfg_init = tiny_config(stages=cfg.stages, ema_decay=0.9, init=str(tmp_path / "init.pt"))
    train(cfg_init, tmp_path / "cont", device="cpu", max_steps=1)
    state = torch.load(tmp_path / "cont" / "last.pt", weights_only=True)
    assert state["step"] == 4 and state["ema"]["warm"] is True and state["ema"]["updates"] == 1
    key = "matching.3.main.0.weight"
    raw, avg = state["model"][key], state["ema"]["tensors"][key]
    assert not torch.equal(raw, init[key])
    # one update at the full decay keeps 0.9 of the init weights (the ramp would have kept 0.1)
    torch.testing.assert_close(avg, init[key] + 0.1 * (raw - init[key]), rtol=1e-5, atol=1e-7)
    assert torch.load(tmp_path / "first" / "last.pt", weights_only=True)["ema"]["warm"] is False  # no init: ramped


def test_stage_overrides_reach_the_loss_and_the_batches(tmp_path):
    from flowcli.train.data import BatchStream

    one_stage = [Stage(finest_level=5, steps=1, lr=1e-4)]
    # a stage's charbonnier_q is the loss the loop uses: the same as setting it for the whole run, not the default
    train(tiny_config(stages=[Stage(finest_level=5, steps=1, lr=1e-4, charbonnier_q=0.2)]), tmp_path / "stage", device="cpu")
    train(tiny_config(stages=one_stage, charbonnier_q=0.2), tmp_path / "run", device="cpu")
    train(tiny_config(stages=one_stage), tmp_path / "default", device="cpu")
    assert losses(tmp_path / "stage") == losses(tmp_path / "run") != losses(tmp_path / "default")
    # motion_scale per stage: stage 1's batches carry the smaller motions, stage 0's the run's
    cfg = tiny_config(stages=[Stage(finest_level=6, steps=1), Stage(finest_level=5, steps=1, motion_scale=[0.1, 0.1])])
    plain = BatchStream(tiny_config(stages=[Stage(finest_level=5, steps=2)])).batch(1)
    small = BatchStream(cfg).batch(1)
    assert cfg.setting(cfg.stages[0], "motion_scale") == [1.0, 1.0]
    ratio = small["flow"].abs().mean() / plain["flow"].abs().mean()
    assert 0.05 < ratio < 0.2, ratio  # the same scenes with motions scaled by 0.1 (augmentation adds a little)


def test_rigid_samples_are_frame_one_under_one_small_affine_motion():
    from flowcli.train.data import BatchStream

    rigid = tiny_config(stages=[Stage(finest_level=5, steps=4)], static_share=1.0)
    b = BatchStream(rigid).batch(0)
    h, w = b["flow"].shape[2:]
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    basis = torch.stack([xx.flatten(), yy.flatten(), torch.ones(h * w)], 1).double()
    for f in b["flow"]:
        assert 0.01 < f.norm(dim=0).mean() < 5.0  # sub-pixel to a few pixels, never none
        for c in f:  # one affine field over the whole frame
            fit = torch.linalg.lstsq(basis, c.flatten().double()[:, None]).solution
            assert (basis @ fit - c.flatten().double()[:, None]).abs().max() < 1e-4
    assert b["valid"].all()
    # without augmentation frame 2 is frame 1 itself and nothing moves
    still = BatchStream(tiny_config(stages=rigid.stages, static_share=1.0, augment_strength=0.0)).batch(0)
    assert torch.equal(still["img1"], still["img2"]) and not still["flow"].any()
    # a share of them, drawn per sample: the others are the ordinary scenes, unchanged
    half = BatchStream(tiny_config(stages=rigid.stages, static_share=0.5, batch=16)).batch(0)
    plain = BatchStream(tiny_config(stages=rigid.stages, batch=16)).batch(0)
    same = [torch.equal(half["flow"][i], plain["flow"][i]) for i in range(16)]
    assert 0 < sum(same) < 16
    with pytest.raises(ValueError, match=r"stage 0: static_share must be in \[0, 1\], got 1.5"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1, "static_share": 1.5}]})


def test_stage_overrides_are_checked():
    with pytest.raises(ValueError, match=r"stage 1: charbonnier_q must be in \(0, 1\], got 0"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1},
                                          {"finest_level": 5, "steps": 1, "charbonnier_q": 0}]})
    with pytest.raises(ValueError, match=r"stage 0: motion_scale must be \[lo, hi\] with 0 < lo <= hi, got \[2, 1\]"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1, "motion_scale": [2, 1]}]})
    with pytest.raises(KeyError, match="'lr' is not a per-stage setting"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1}]}).setting(Stage(finest_level=6, steps=1), "lr")


def test_overrides_parse_toml_values_and_bare_words():
    cfg = tiny_config()
    out = apply_overrides(cfg, ["init=weights/x.pt", "motion_scale = [0.1, 0.5]", "precision='auto'", "workers=3"])
    assert (out.init, out.motion_scale, out.precision, out.workers) == ("weights/x.pt", [0.1, 0.5], "auto", 3)
    assert out.stages == cfg.stages and cfg.workers == 0  # the original is untouched
    with pytest.raises(ValueError, match="'bogus' is not a run setting"):
        apply_overrides(cfg, ["bogus=1"])
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        apply_overrides(cfg, ["workers"])
    with pytest.raises(ValueError, match="motion_scale must be"):
        apply_overrides(cfg, ["motion_scale=[0.5, 0.1]"])


def test_recipe_resumes_from_a_committed_point_on_its_own_schedule():
    """A fresh machine continues the project's run from the weights the recipe names (``init``): they must exist in
    the repo, hold a step inside the recipe, and have been trained down to the level the recipe trains at that step."""
    root = Path(__file__).resolve().parents[2]
    cfg = load_config(root / "weights" / "train_synthetic.toml")
    assert cfg.init, "the recipe names no init weights: a fresh machine would restart the run from scratch"
    ckpt = read_checkpoint(root / cfg.init)
    step = ckpt.meta["train_step"]
    assert 0 < step < cfg.total_steps
    _, stage, _ = cfg.stage_at(step - 1)
    assert ckpt.meta["finest_level"] == stage.finest_level
    assert ckpt.meta["weight_average"] is not None  # the averaged weights, as every export of this run


def test_large_motions_reach_the_batches_and_keep_their_length():
    """A stage with large_motion_share trains on translations far beyond the default motions (the motion_scale factor
    does not shrink them), and the other stages' batches stay as they were."""
    from flowcli.train.data import BatchStream

    def top(cfg, step):
        flow = BatchStream(cfg).batch(step)["flow"]
        return float(flow.norm(dim=1).flatten(1).quantile(0.95, dim=1).max())

    base = tiny_config(crop=[96, 128], motion_scale=[0.15, 1.0], augment_strength=0.0)
    large = tiny_config(crop=[96, 128], motion_scale=[0.15, 1.0], augment_strength=0.0,
                        stages=[Stage(finest_level=6, steps=1),
                                Stage(finest_level=5, steps=1, large_motion_share=1.0, large_motion_range=[40, 60])])
    torch.testing.assert_close(BatchStream(large).batch(0)["img1"], BatchStream(base).batch(0)["img1"])
    assert top(base, 1) < 20 < 40 * 0.8 < top(large, 1)
    with pytest.raises(ValueError, match=r"large_motion_range must be \[lo, hi\]"):
        TrainConfig.from_dict({"stages": [{"finest_level": 6, "steps": 1, "large_motion_range": [9, 3]}]})


def test_fixed_pyramid_levels_keep_the_fine_features():
    net = build_liteflownet()
    set_trainable(net, Stage(finest_level=4, steps=1, fixed_pyramid_levels=3))
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert not any(n.startswith(("features.levels.0.", "features.levels.1.", "features.levels.2.")) for n in trainable)
    assert any(n.startswith("features.levels.3.") for n in trainable)  # pyramid level 4 learns
    assert "matching.2.main.0.weight" in trainable and "matching.1.main.0.weight" not in trainable


def test_patience_ends_the_stage_and_a_rerun_reports_it(tmp_path, monkeypatch):
    """The stage's budget: no improvement of the watched band for `patience` steps stops the run, saved; the reason
    survives a re-run (which trains no further)."""
    bands = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8, 4.9])
    monkeypatch.setattr(loop, "validate", lambda model, batches, stage: {
        "aee": 1.0, "by_magnitude": {"30-100": {"aee": next(bands)}}})
    stage = Stage(finest_level=6, steps=20, lr=1e-4, patience=3)
    cfg = tiny_config(stages=[stage], validate_every=1, validate_pairs=2)
    result = train(cfg, tmp_path / "run", device="cpu")
    # best 4.0 at step 2; steps 3, 4, 5 bring no improvement: stopped at step 5
    assert result.last["step"] == 5 and "not improved for 3 steps" in result.last["stopped"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["step"] == 5 and state["budget"]["best_step"] == 2 and state["budget"]["finished"]
    again = train(cfg, tmp_path / "run", device="cpu")
    assert again.last["step"] == 5 and "not improved" in again.last["stopped"]


def test_max_hours_counts_training_time_over_resumes(tmp_path, monkeypatch):
    """The hour budget is summed over resumes: a run interrupted after 2 steps stops at exactly the step where the
    uninterrupted run stops (a resume that restarted the budget would train on)."""
    def fake_clock():
        clock = {"t": 0.0}  # every call of time.time() is one second later: the same steps cost the same time
        monkeypatch.setattr(loop.time, "time", lambda: clock.__setitem__("t", clock["t"] + 1.0) or clock["t"])

    stage = Stage(finest_level=6, steps=50, lr=1e-4, max_hours=10 / 3600)  # ten (fake) seconds of steps
    cfg = tiny_config(stages=[stage])
    fake_clock()
    whole = train(cfg, tmp_path / "whole", device="cpu")
    fake_clock()
    train(cfg, tmp_path / "run", device="cpu", max_steps=2)
    result = train(cfg, tmp_path / "run", device="cpu")
    assert 2 < whole.last["step"] < 50 and "trained for" in whole.last["stopped"]
    assert result.last["step"] == whole.last["step"] and "trained for" in result.last["stopped"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["budget"]["seconds"] >= 10


def test_a_budget_that_ends_a_stage_moves_the_run_on_to_the_next(tmp_path, monkeypatch):
    """Patience ends stage 0 early; stage 1 then trains all its steps from there, and a re-run changes nothing."""
    bands = iter([5.0, 4.0, 4.5, 4.6, 4.7] + [9.0] * 20)
    monkeypatch.setattr(loop, "validate", lambda model, batches, stage: {
        "aee": 1.0, "by_magnitude": {"0-1": {"aee": next(bands), "pixels": 10}, "1-3": {"aee": 0.0, "pixels": 0}}})
    stages = [Stage(finest_level=6, steps=20, lr=1e-4, patience=3, patience_band="0-3"),
              Stage(finest_level=5, steps=3, lr=1e-4, copy_from_coarser=False)]
    cfg = tiny_config(stages=stages, validate_every=1, validate_pairs=2)
    result = train(cfg, tmp_path / "run", device="cpu")
    assert result.last["step"] == 5 + 3 and "stopped" not in result.last  # stage 0 ended at step 5, then 3 steps
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert [r["stage"] for r in records] == [0] * 5 + [1] * 3
    assert "not improved for 3 steps" in records[4]["stage_ended"]
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["ended"] == {"0": {"steps": 5, "why": records[4]["stage_ended"]}} and state["stage"] == 1
    again = train(cfg, tmp_path / "run", device="cpu")
    assert again.last["step"] == 8
    assert len(open(tmp_path / "run" / "metrics.jsonl").read().splitlines()) == 8


def test_a_stage_cut_by_its_budget_resumes_exactly_in_the_next_stage(tmp_path, monkeypatch):
    """A run stopped right after its budget moved it on, resumed, ends with the weights of the uninterrupted run."""
    def patience_from_step_two():
        bands = iter([5.0, 4.0] + [6.0] * 30)
        monkeypatch.setattr(loop, "validate", lambda model, batches, stage: {
            "aee": 1.0, "by_magnitude": {"30-100": {"aee": next(bands)}}})

    stages = [Stage(finest_level=6, steps=20, lr=1e-4, patience=2), Stage(finest_level=6, steps=3, lr=1e-4)]
    cfg = tiny_config(stages=stages, validate_every=1, validate_pairs=2)
    patience_from_step_two()
    whole = train(cfg, tmp_path / "whole", device="cpu")
    patience_from_step_two()
    train(cfg, tmp_path / "run", device="cpu", max_steps=4)  # stage 0 ends at step 4: the cut falls on the stop
    resumed = train(cfg, tmp_path / "run", device="cpu")
    assert whole.last["step"] == resumed.last["step"] == 7
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_run_of_another_config_is_refused_naming_the_stage(tmp_path):
    cfg = tiny_config()
    train(cfg, tmp_path / "run", device="cpu", max_steps=2)  # inside stage 0
    changed = tiny_config(stages=[Stage(finest_level=6, skip_finest_r=True, steps=3, lr=1e-3), cfg.stages[1]])
    with pytest.raises(loop.ConfigMismatchError, match=r"stage 0 differs: lr is 0.0002 in the run and 0.001"):
        train(changed, tmp_path / "run", device="cpu")
    with pytest.raises(loop.ConfigMismatchError, match="run setting batch differs"):
        train(tiny_config(batch=3), tmp_path / "run", device="cpu")
    # a stage the run has not reached may change, and so may the machine's settings
    later = tiny_config(stages=[cfg.stages[0], Stage(finest_level=5, steps=4, lr=1e-4)], workers=1)
    assert train(later, tmp_path / "run", device="cpu").last["step"] == 7


def test_export_after_a_coarse_stage_keeps_the_finest_level_trained_before(tmp_path):
    """A later stage that trains only coarse levels (new motions) must not make inference stop at its level."""
    cfg = tiny_config(stages=[Stage(finest_level=5, steps=2, lr=1e-4), Stage(finest_level=6, steps=2, lr=1e-4)])
    train(cfg, tmp_path / "run", device="cpu")
    ckpt = read_checkpoint(export_weights(tmp_path / "run", tmp_path / "w.pt", name="w"))
    assert ckpt.meta["finest_level"] == 5
