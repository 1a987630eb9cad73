"""Rewrite the generated tables of README.md and weights/MODEL_CARD.md from the bundled weights' measurements.

    python tools/update_docs.py          (after `flowcli eval ... --json weights/flowcli-synthetic.{real,val}.json`)

A generated block sits between ``<!-- eval:NAME -->`` and ``<!-- /eval:NAME -->``, NAME a key of the bundled entry's
metrics (``real``, ``val``); its text is :func:`flowcli.jobs.evaluation.markdown_from_report` of that JSON file, so the
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

DOCUMENTS = (ROOT / "README.md", ROOT / "weights" / "MODEL_CARD.md")


def blocks() -> dict[str, str]:
    """NAME -> generated Markdown for every measurement of the default bundled weights."""
    return {name: markdown_from_report(doc) for name, doc in bundled_entries()[0].load_metrics().items()}


def fill(text: str, generated: dict[str, str]) -> str:
    for name, table in generated.items():
        pattern = re.compile(rf"(<!-- eval:{name} -->\n).*?(<!-- /eval:{name} -->)", re.S)
        text = pattern.sub(lambda m: m.group(1) + table + m.group(2), text)
    return text


def main() -> None:
    generated = blocks()
    for doc in DOCUMENTS:
        before = doc.read_text(encoding="utf-8")
        after = fill(before, generated)
        if after != before:
            doc.write_text(after, encoding="utf-8")
            print(f"updated {doc.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
