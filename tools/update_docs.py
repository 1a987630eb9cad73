"""Rewrite the generated tables of README.md, weights/MODEL_CARD.md and docs/accuracy.md from the bundled weights'
measurements.

    python tools/update_docs.py     (after `flowcli eval ... --json weights/flowcli-synthetic.{real,val,large}.json`)

A generated block sits between ``<!-- eval:NAME -->`` and ``<!-- /eval:NAME -->``, NAME a key of the bundled entry's
metrics (``real``, ``val``, ``large``), or ``NAME:groups`` for the per-group table alone; its text is
:func:`flowcli.jobs.evaluation.markdown_from_report` (compact: AEE per group and method) of that JSON file, so the
tables are the measurement itself. tests/test_weights.py checks the documents hold exactly that text.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flowcli.jobs.evaluation import markdown_from_report  # noqa: E402
from flowcli.weights import bundled_entries  # noqa: E402

DOCUMENTS = (ROOT / "README.md", ROOT / "weights" / "MODEL_CARD.md", ROOT / "docs" / "accuracy.md")


def block_text(block: str, reports: dict) -> str:
    """The generated Markdown of a block named ``NAME`` (the AEE per group and method, then per band of true motion)
    or ``NAME:groups`` (per group only), NAME a key of the bundled entry's metrics."""
    name, _, option = block.partition(":")
    return markdown_from_report(reports[name], compact=True, by_magnitude=option != "groups")


def fill(text: str, reports: dict) -> str:
    def one(m: re.Match) -> str:
        return m.group(1) + block_text(m.group(2), reports) + m.group(3)

    return re.sub(r"(<!-- eval:([\w:]+) -->\n).*?(<!-- /eval:\2 -->)", one, text, flags=re.S)


def main() -> None:
    reports = bundled_entries()[0].load_metrics()
    for doc in DOCUMENTS:
        before = doc.read_text(encoding="utf-8")
        after = fill(before, reports)
        if after != before:
            doc.write_text(after, encoding="utf-8")
            print(f"updated {doc.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
