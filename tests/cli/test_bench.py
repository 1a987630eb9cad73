"""`flowcli bench` prints measurements as JSON (values are whatever this machine gives: only their form is checked)."""
import json

from click.testing import CliRunner

from flowcli.cli import main


def test_bench_json_small():
    r = CliRunner().invoke(main, ["bench", "--size", "64x48", "--device", "cpu", "--batch", "1", "--batch", "2",
                                  "--repeats", "1", "--warmup", "0", "--threads", "1", "--json"])
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["threads"] == 1
    assert {(x["variant"], x["batch"]) for x in out["results"]} == {("tuned", 1), ("tuned", 2), ("eager", 1), ("eager", 2)}
    assert all(x["seconds_per_pair"] > 0 and x["width"] == 64 and x["height"] == 48 for x in out["results"])
    assert len(out["speedups"]) == 2


def test_bench_rejects_bad_size():
    r = CliRunner().invoke(main, ["bench", "--size", "12x7"])
    assert r.exit_code == 2 and "12x7" in r.stderr
