"""`flowcli train` through the CLI: runs, resumes, exports; bad configs are one-line errors."""
import json

from click.testing import CliRunner

from flowcli.cli import main
from flowcli.weights import read_checkpoint

CONFIG = {"crop": [64, 96], "batch": 2, "checkpoint_every": 1, "log_every": 1, "validate_every": 0, "workers": 0,
          "threads": 1, "stages": [{"finest_level": 6, "steps": 2, "lr": 1e-4}, {"finest_level": 5, "steps": 1}]}


def test_train_resume_and_export(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps(CONFIG))
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(cfg), str(run), "--device", "cpu", "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    r = CliRunner().invoke(main, ["train", str(cfg), str(run), "--device", "cpu", "--export", str(tmp_path / "w.pt"),
                                  "--name", "tiny"])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    meta = read_checkpoint(tmp_path / "w.pt").meta
    assert meta["name"] == "tiny" and meta["train_step"] == 3 and meta["finest_level"] == 5
    assert r.stdout == ""


def test_bad_config_is_one_line(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**CONFIG, "lr_typo": 1}))
    r = CliRunner().invoke(main, ["train", str(cfg), str(tmp_path / "run")])
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "lr_typo" in r.stderr and "c.json" in r.stderr


def test_time_limit_stops_after_one_step_with_the_state_saved(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**CONFIG, "checkpoint_every": 100}))  # no regular checkpoint would fall in 1 step
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(cfg), str(run), "--device", "cpu", "--time-limit", "0"])
    assert r.exit_code == 0, r.output
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    assert "stopped at step 1 of 3" in r.stderr
    import torch
    assert torch.load(run / "last.pt", weights_only=True)["step"] == 1


def test_emulated_bf16_is_one_warning_line(tmp_path, monkeypatch):
    from flowcli.train import loop
    monkeypatch.setattr(loop, "native_bf16", lambda device: False)
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**CONFIG, "precision": "bf16", "stages": [{"finest_level": 6, "steps": 1}]}))
    r = CliRunner().invoke(main, ["train", str(cfg), str(tmp_path / "run"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if "bfloat16" in line]
    assert len(lines) == 1 and lines[0].startswith('warning: precision = "bf16" on cpu'), r.stderr
    assert "loop.py" not in r.stderr  # not Python's two-line form with a source line


def test_set_overrides_run_settings_and_refuses_unknown_ones(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**CONFIG, "stages": [{"finest_level": 6, "steps": 4}]}))
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(cfg), str(run), "--device", "cpu", "--set", "log_every=2",
                                  "--set", "checkpoint_every = 4"])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [2, 4]
    r = CliRunner().invoke(main, ["train", str(cfg), str(tmp_path / "r2"), "--set", "stages=[]"])
    assert r.exit_code == 2 and "'stages' is not a run setting" in r.stderr and r.stderr.strip().count("\n") == 0
    r = CliRunner().invoke(main, ["train", str(cfg), str(tmp_path / "r2"), "--set", "workers=-1"])
    assert r.exit_code == 2 and "workers" in r.stderr


def test_time_limit_stop_is_logged_even_between_log_steps(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({**CONFIG, "log_every": 100, "checkpoint_every": 100}))
    run = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", str(cfg), str(run), "--device", "cpu", "--time-limit", "0"])
    assert r.exit_code == 0, r.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [rec["step"] for rec in records] == [1] and records[0]["precision"] == "fp32"


def test_without_run_dir_the_run_lives_in_the_cache_and_resumes_from_another_checkout(tmp_path, monkeypatch):
    """Two checkouts of the same config share one run in the user's cache folder: the second resumes where the first
    stopped and ends with the weights of an uninterrupted run; a checkout whose config changed a trained stage is
    refused with one line naming that stage."""
    import torch

    def checkout(name, config):
        (tmp_path / name).mkdir()
        path = tmp_path / name / "recipe.json"
        path.write_text(json.dumps(config))
        return str(path)

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    r = CliRunner().invoke(main, ["train", checkout("a", CONFIG), "--device", "cpu", "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    run = tmp_path / "cache" / "flowcli" / "runs" / "recipe"
    assert str(run) in r.stderr and (run / "last.pt").exists()
    r = CliRunner().invoke(main, ["train", checkout("b", CONFIG), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "resuming" in r.stderr and len((run / "metrics.jsonl").read_text().splitlines()) == 3
    whole = tmp_path / "whole"
    r = CliRunner().invoke(main, ["train", checkout("c", CONFIG), str(whole), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    a, b = (torch.load(p / "last.pt", weights_only=True)["model"] for p in (run, whole))
    assert all(torch.equal(a[k], b[k]) for k in a)

    changed = {**CONFIG, "stages": [{"finest_level": 6, "steps": 2, "lr": 3e-4}, CONFIG["stages"][1]]}
    r = CliRunner().invoke(main, ["train", checkout("d", changed), "--device", "cpu"])
    assert r.exit_code == 1
    assert r.stderr.strip().count("\n") == 0 and "stage 0 differs" in r.stderr and str(run) in r.stderr
