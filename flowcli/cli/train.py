"""``flowcli train CONFIG [RUN_DIR]``: stage-wise training with checkpoints, exact resume and a progress line.

Re-running the same command resumes from ``RUN_DIR/last.pt``; without RUN_DIR the run lives in the user's cache folder
(:func:`flowcli.train.default_run_dir`), so that it outlives the checkout it was started from. Under ``torchrun --nproc_per_node=N -m flowcli
train ...`` every process trains one DDP replica (nccl on GPUs, gloo on CPU); only rank 0 writes.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import click

from flowcli.cli.app import pass_app
from flowcli.cli.options import device_option


@click.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.argument("run_dir", type=click.Path(file_okay=False), required=False)
@device_option()
@click.option("--max-steps", type=click.IntRange(min=1), default=None, help="Stop after this many more steps.")
@click.option("--time-limit", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="Stop, saving the run state, once this much wall time has passed (e.g. a lent GPU's time).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a run setting of CONFIG (repeatable; TOML values), e.g. --set workers=14 on a GPU machine.")
@click.option("--export", "export_to", type=click.Path(dir_okay=False), default=None,
              help="When done, write the weights (fp16, flowcli format) to this file.")
@click.option("--name", default=None, help="Name recorded in the exported weights (default: the run folder's).")
@pass_app
def command(app, config: str, run_dir: Optional[str], device: str, max_steps: Optional[int], time_limit: Optional[float],
            overrides: tuple[str, ...], export_to: Optional[str], name: Optional[str]) -> None:
    """Train LiteFlowNet as CONFIG (TOML or JSON) says, in RUN_DIR (resumes if it holds a run of the same config).

    Without RUN_DIR the run lives in the user's cache folder, ~/.cache/flowcli/runs/CONFIG-NAME (XDG_CACHE_HOME
    where set), and the same command resumes it from any checkout."""
    from flowcli.train import apply_overrides, default_run_dir, export_weights, load_config, train
    from flowcli.train.loop import check_run_dir

    cfg = load_config(config)
    try:
        cfg = apply_overrides(cfg, overrides)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--set'") from None
    rank0 = int(os.environ.get("RANK", "0")) == 0
    run_dir = str(run_dir or default_run_dir(config))
    resumed = check_run_dir(cfg, run_dir)  # a run of another config is refused before anything is printed
    if rank0:
        app.info(f"{'resuming' if resumed else 'starting'} {config} in {run_dir}: {cfg.total_steps} steps in "
             f"{len(cfg.stages)} stage(s), batch {cfg.batch}, crop {cfg.crop[0]}x{cfg.crop[1]}, precision {cfg.precision}")
    t0 = time.time()
    with app.progress(unit="steps") as bar:
        task = bar.add_task("train", total=cfg.total_steps, rate="")
        started = {"done": False}

        def on_log(rec: dict) -> None:
            if not started["done"]:
                bar.update(task, completed=rec["step"])
                started["done"] = True
            text = (f"loss {rec['loss']:.3f}  EPE {rec['epe']:.2f}px  {rec['steps_per_s']:.2f} steps/s  "
                    f"level {rec['finest_level']}  {rec['precision']}" + (f"  val EPE {rec['val_epe']:.2f}" if "val_epe" in rec else ""))
            bar.update(task, completed=rec["step"], rate=text)
            if not app.console.is_terminal and rank0:
                app.info(f"step {rec['step']}: {text}")

        result = train(cfg, run_dir, device=device, max_steps=max_steps, on_log=on_log, time_limit=time_limit)
    if rank0:
        last = result.last
        if last.get("stopped"):
            app.info(f"the stage's budget ended the run: {last['stopped']}")
        app.info(f"stopped at step {last.get('step')} of {cfg.total_steps} after {time.time() - t0:.0f} s; "
             f"state in {Path(run_dir) / 'last.pt'}")
        if export_to:
            path = export_weights(run_dir, export_to, name=name or Path(run_dir).name)
            app.info(f"weights written to {path}")
