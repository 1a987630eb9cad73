"""Motion over time: per-pair statistics of a clip's flow (``flowcli video --stats``), the numbers people use to find
camera shake, cuts and activity in footage.

* :func:`motion_stats` reduces one flow field to its mean, median and 95th-percentile magnitude (px) and its mean
  direction: the direction of the mean vector in degrees on image axes (0 = right, 90 = down, 180 = left,
  270 = up), with the mean vector's components.
* :func:`write_stats` writes rows of them as CSV (:data:`STATS_COLUMNS`) or, through matplotlib, as a plot.

numpy only (matplotlib for plots, when asked).
"""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

__all__ = ["STATS_COLUMNS", "STATS_EXTENSIONS", "frame_time", "motion_stats", "read_stats_csv", "write_stats"]

#: The CSV's columns: the pair's number, its frames in the clip and the time of its first frame, then the statistics.
STATS_COLUMNS = ("pair", "frame1", "frame2", "time_s", "mean_px", "median_px", "p95_px", "direction_deg", "mean_u_px",
                 "mean_v_px")
STATS_EXTENSIONS = (".csv", ".png", ".svg", ".pdf")


def motion_stats(flow: np.ndarray) -> dict:
    """``{"mean_px", "median_px", "p95_px", "direction_deg", "mean_u_px", "mean_v_px"}`` of an HxWx2 flow (u, v in
    pixels) over its finite vectors, computed in float64. ``direction_deg`` is ``atan2(mean v, mean u)`` in [0, 360)
    (0 when the mean vector is zero); everything is NaN when no vector is finite."""
    f = np.asarray(flow)
    if f.ndim != 3 or f.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {f.shape}")
    u = f[..., 0].astype(np.float64).ravel()
    v = f[..., 1].astype(np.float64).ravel()
    keep = np.isfinite(u) & np.isfinite(v)
    if not keep.all():
        u, v = u[keep], v[keep]
    if u.size == 0:
        return {k: math.nan for k in STATS_COLUMNS[4:]}
    mag = np.hypot(u, v)
    mu, mv = float(u.mean()), float(v.mean())
    direction = math.degrees(math.atan2(mv, mu)) % 360.0 if (mu or mv) else 0.0
    median, p95 = np.percentile(mag, (50, 95))
    return {"mean_px": float(mag.mean()), "median_px": float(median), "p95_px": float(p95),
            "direction_deg": direction, "mean_u_px": mu, "mean_v_px": mv}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    x = float(value)
    return "" if not math.isfinite(x) else f"{x:.6f}"


def write_stats(path: str | os.PathLike, rows: Sequence[Mapping[str, float]], *, title: str = "") -> None:
    """Write ``rows`` (dicts with :data:`STATS_COLUMNS`, in pair order) atomically to ``path``: a ``.csv`` (six
    decimals; an unknown time is an empty cell) or, through :func:`flowcli.jobs.charts.motion_chart`, a ``.png``,
    ``.svg`` or ``.pdf`` plot. ValueError for another extension."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in STATS_EXTENSIONS:
        raise ValueError(f"{p}: unsupported statistics extension {ext or '(none)'!r} "
                         f"(use {', '.join(STATS_EXTENSIONS)})")
    if ext != ".csv":
        from flowcli.jobs.charts import motion_chart

        motion_chart(p, rows, title=title)
        return
    from flowcli.io.atomic import atomic_path

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(STATS_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(k)) for k in STATS_COLUMNS])
    with atomic_path(p) as tmp:
        Path(tmp).write_text(buf.getvalue(), encoding="utf-8")


def read_stats_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a :func:`write_stats` CSV: ints for the pair and frames, floats (None when empty) for the rest."""
    out = []
    with open(path, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            item: dict = {}
            for k, text in row.items():
                if k in ("pair", "frame1", "frame2"):
                    item[k] = int(text)
                else:
                    item[k] = float(text) if text != "" else None
            out.append(item)
    return out


def frame_time(frame: int, fps: float) -> Optional[float]:
    """Seconds from the clip's start to ``frame`` at ``fps`` (None when the clip does not say its rate)."""
    return frame / fps if fps and fps > 0 else None
