"""``python -m flowcli.train CONFIG RUN_DIR``: the trainer without the CLI (``flowcli train`` is the same)."""
from __future__ import annotations

import argparse
import json
import sys

from .config import apply_overrides, load_config
from .loop import train


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m flowcli.train")
    p.add_argument("config")
    p.add_argument("run_dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--time-limit", type=float, default=None, help="stop (state saved) after this many seconds")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a run setting of the config (repeatable), e.g. workers=14")
    args = p.parse_args(argv)
    cfg = apply_overrides(load_config(args.config), args.overrides)
    train(cfg, args.run_dir, device=args.device, max_steps=args.max_steps, time_limit=args.time_limit,
          on_log=lambda r: print(json.dumps(r), file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
