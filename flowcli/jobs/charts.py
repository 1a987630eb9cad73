"""Plots of results, drawn by matplotlib (the optional ``report`` extra: ``pip install 'flowcli[report]'``).

* :func:`have_matplotlib` says whether plots can be drawn; :data:`MISSING` is the one line to say when they cannot.
* :func:`band_chart` draws the AEE per band of true motion (``eval --by-magnitude``) as grouped bars, one per method.
* :func:`motion_chart` draws a clip's motion over time (``video --stats``): magnitudes above, direction below.

Both write the file atomically (its format from the extension: .png, .svg, .pdf) and return nothing. matplotlib's
object API is used with its Agg canvas, never pyplot: no global figure state, no GUI backend, safe in a worker thread.
"""
from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

__all__ = ["CHART_EXTENSIONS", "MISSING", "band_chart", "have_matplotlib", "motion_chart", "preload"]

MISSING = "matplotlib is not installed (pip install 'flowcli[report]')"
CHART_EXTENSIONS = (".png", ".svg", ".pdf")


def have_matplotlib() -> bool:
    """Whether matplotlib can be imported (checked without importing it: that takes about a second)."""
    return importlib.util.find_spec("matplotlib") is not None


def preload() -> None:
    """Import the parts of matplotlib the charts use (about a second), e.g. in a background thread while other work
    runs; a no-op without matplotlib."""
    if have_matplotlib():
        import matplotlib.backends.backend_agg  # noqa: F401
        import matplotlib.figure  # noqa: F401


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    # fixed margins (set by each chart) rather than a layout engine: constrained layout took a third of a second
    return Figure(figsize=(width, height), dpi=100)


def _save(fig, path: str | os.PathLike) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from flowcli.io.atomic import atomic_path

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in CHART_EXTENSIONS:
        raise ValueError(f"{p}: unsupported plot extension {ext or '(none)'!r} (use {', '.join(CHART_EXTENSIONS)})")
    FigureCanvasAgg(fig)
    with atomic_path(p) as tmp:
        fig.savefig(tmp, format=ext.lstrip("."))


def band_chart(path: str | os.PathLike, bands: Sequence[str], series: Mapping[str, Sequence[Optional[float]]],
               shares: Optional[Sequence[Optional[float]]] = None, *, title: str = "") -> None:
    """Grouped bars of the AEE (px) per band of true motion: ``bands`` are the band names (``0-1``, ...), ``series``
    maps each method's label to its AEE per band (None: no pixel in that band), ``shares`` the fraction of pixels in
    each band (written under its name). The AEE axis is logarithmic: sub-pixel and 100 px errors share one chart."""
    fig = _figure(8.0, 3.6)
    fig.subplots_adjust(left=0.08, right=0.99, bottom=0.22, top=0.91 if title else 0.97)
    ax = fig.add_subplot()
    n = max(1, len(series))
    width = 0.8 / n
    values = [v for vals in series.values() for v in vals if v is not None and v > 0]
    for k, (label, vals) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(bands))]
        ys = [v if v is not None and v > 0 else float("nan") for v in vals]
        ax.bar(xs, ys, width=width * 0.95, label=label)
    names = [f"{b} px" for b in bands]
    if shares is not None:
        names = [f"{name}\n{100 * s:.1f} % of pixels" if s is not None else name for name, s in zip(names, shares)]
    ax.set_xticks(range(len(bands)), names, fontsize=8)
    if values:
        ax.set_yscale("log")
        ax.set_ylim(10 ** math.floor(math.log10(min(values))), 10 ** math.ceil(math.log10(max(values)) + 0.05))
    ax.set_ylabel("AEE (px, log scale)")
    ax.set_xlabel("true motion")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.set_axisbelow(True)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)


def motion_chart(path: str | os.PathLike, rows: Sequence[Mapping[str, float]], *, title: str = "") -> None:
    """A clip's motion over time from :func:`flowcli.jobs.motion.motion_stats` rows (with ``time_s`` or ``pair``):
    mean, median and 95th-percentile magnitude (px) above, the mean direction (degrees, image axes: 0 = right,
    90 = down) below, on one time axis."""
    fig = _figure(9.0, 5.0)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.93 if title else 0.97, hspace=0.08)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    timed = bool(rows) and all(r.get("time_s") is not None for r in rows)
    xs = [r["time_s"] if timed else r["pair"] for r in rows]
    for key, label in (("p95_px", "95th percentile"), ("mean_px", "mean"), ("median_px", "median")):
        top.plot(xs, [r[key] for r in rows], label=label, linewidth=1.2)
    top.set_ylabel("magnitude (px)")
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="upper right")
    if title:
        top.set_title(title, fontsize=10)
    bottom.scatter(xs, [r["direction_deg"] for r in rows], s=6)
    bottom.set_ylim(0, 360)
    bottom.set_yticks([0, 90, 180, 270, 360], ["0 right", "90 down", "180 left", "270 up", "360"], fontsize=8)
    bottom.set_ylabel("mean direction")
    bottom.grid(alpha=0.3)
    bottom.set_xlabel("time (s)" if timed else "pair")
    _save(fig, path)
