"""The evaluation report behind ``flowcli eval --report DIR``: one self-contained folder, ``index.html`` and its
pictures, to look at where a method fails rather than read it off a table.

The page holds the summary table per group and method (the numbers of ``--json``), the AEE per band of true motion
as a bar chart (matplotlib, when installed) and a table, one row per pair (frame 1, the true flow's colors, each
method's colors and end-point-error map, ordered by the first method's AEE, worst first, and sortable), pairs that
failed as failed rows, and how the run was made. Colors of one pair share one scale (the true flow's largest
magnitude), so they compare across methods; so do its error maps (0 to a round number near the first method's 95th
percentile). The page shows thumbnails; each links to its full-size picture. Nothing comes from the network: no
script, font or image outside the folder, so it opens offline and from a copy.

Use: :func:`check_report_folder` before the run (refuses a folder holding other files unless ``overwrite``), then
an :class:`EvalReport` whose :meth:`~EvalReport.add_pair` and :meth:`~EvalReport.add_failure` are
:func:`flowcli.jobs.evaluation.evaluate`'s ``on_pair`` and ``on_failure`` hooks (pictures are drawn in a background
thread while the methods run), and :meth:`~EvalReport.finish` with the results. The folder appears whole when done
(written under a hidden name beside it, then renamed); an error or interrupt leaves nothing.

No click, rich or torch here.
"""
from __future__ import annotations

import html
import math
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from flowcli.threads import Worker

__all__ = ["EvalReport", "ReportSummary", "check_report_folder", "nice_ceiling"]

THUMB_WIDTH = 200  # px: a row of two methods (six pictures) fits a 1500 px screen; 100 pairs stay a few MB
FULL_QUALITY = 85  # JPEG: a Sintel frame at ~100 KB keeps a 100-pair report under ~50 MB (PNG: 5x that)
THUMB_QUALITY = 80
ERROR_PERCENTILE = 95.0  # the error maps' scale: a round number above this percentile of the first method's EPE


def nice_ceiling(value: float, minimum: float = 1.0) -> float:
    """The smallest of 1, 2, 5 x 10^k that is >= ``value`` (and >= ``minimum``): a scale a reader takes in at once."""
    v = max(float(value), minimum) if math.isfinite(value) else minimum
    k = math.floor(math.log10(v))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10 ** k >= v * (1 - 1e-12):
            return m * 10 ** k
    return 10.0 ** (k + 1)  # pragma: no cover - the loop always returns


def check_report_folder(folder: str | os.PathLike, *, overwrite: bool = False, inputs: Sequence = (),
                        outputs: Sequence = ()) -> Path:
    """Refuse, before any work, a report folder that cannot or must not be written, with a one-line OSError naming
    it: a file of that name; a folder holding files without ``overwrite``; a folder that holds one of ``inputs``
    (the dataset's files) or ``outputs`` (the run's other outputs: the report replaces the folder whole), or the
    working directory. Returns the folder's path; its parent must be writable (it is created if missing)."""
    from flowcli.errors import OutputCollisionError

    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise FileExistsError(17, "exists and is not a folder; give a folder name for the report", str(d))
    if d.is_dir() and any(d.iterdir()) and not overwrite:
        raise FileExistsError(17, "the report folder exists and holds other files; pass --overwrite to replace it",
                              str(d))
    real = os.path.realpath(d)

    def inside(p) -> bool:
        rp = os.path.realpath(p)
        return rp == real or rp.startswith(real.rstrip(os.sep) + os.sep)

    for p in inputs:
        if inside(p):
            raise OutputCollisionError(d, p, "input")
    for p in outputs:
        if p and str(p) != "-" and inside(p):
            raise OutputCollisionError(d, p, "output")
    if inside(os.getcwd()):
        raise OSError(f"{d}: the report would replace the folder this command runs in; choose another folder")
    parent = d.parent if str(d.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot create {parent} for the report {d}: {exc.strerror or exc}") from None
    if not os.access(parent, os.W_OK):
        raise OSError(f"cannot write into {parent} (for the report {d})")
    return d


@dataclass
class _Picture:
    """A picture written twice: full size and as a thumbnail (paths relative to the report folder)."""

    full: str
    thumb: str
    width: int
    height: int
    thumb_width: int
    thumb_height: int


@dataclass
class _Row:
    """What the page shows of one pair."""

    index: int
    name: str
    sequence: str = ""
    size: Optional[tuple] = None  # (width, height)
    frame: Optional[_Picture] = None
    truth: Optional[_Picture] = None
    has_truth: bool = False
    color_scale: Optional[float] = None  # px of full color saturation, for every picture of the row
    error_scale: Optional[float] = None  # px at the top of the error maps' color scale
    flows: Dict[str, _Picture] = field(default_factory=dict)
    errors: Dict[str, _Picture] = field(default_factory=dict)
    failed: Dict[str, str] = field(default_factory=dict)  # method -> message


@dataclass
class ReportSummary:
    """What :meth:`EvalReport.finish` made: the folder, its pair rows, pictures and bytes, the seconds spent on the
    report (drawing, encoding, the page; in the background thread and at the end), and what was left out."""

    folder: Path
    pairs: int
    failed: int
    pictures: int
    bytes: int
    seconds: float
    finish_seconds: float  # of those, the ones after the eval: waiting for the last pictures, the chart, the page
    left_out: List[str]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "method"


class EvalReport:
    """An evaluation report being made in a hidden folder beside ``folder`` (see the module's docstring).

    ``overwrite``: replace an existing ``folder`` when done (check it first with :func:`check_report_folder`).
    ``thumb_width``: the thumbnails' width in pixels. Use as a context manager, or call :meth:`abort` on failure.
    """

    def __init__(self, folder: str | os.PathLike, *, overwrite: bool = False, thumb_width: int = THUMB_WIDTH) -> None:
        self.folder = Path(folder)
        self.overwrite = overwrite
        self.thumb_width = int(thumb_width)
        self.stage = self.folder.parent / f".{self.folder.name}.tmp{os.getpid()}"
        if self.stage.exists():
            shutil.rmtree(self.stage)  # left by an earlier process of the same id that was killed
        (self.stage / "full").mkdir(parents=True)
        (self.stage / "thumbs").mkdir()
        self.rows: Dict[int, _Row] = {}
        self.methods: List[str] = []  # in the order they first reported
        self.seconds = 0.0
        self.pictures = 0
        self._worker = Worker(maxsize=4, name="report")
        self._worker.submit(self._timed, _preload_charts)  # matplotlib loads while the first method runs
        self._done = False

    def _timed(self, fn, *args) -> None:
        t0 = time.perf_counter()
        try:
            fn(*args)
        finally:
            self.seconds += time.perf_counter() - t0

    # ---------------------------------------------------------------------------------------- the eval's hooks

    def add_pair(self, method: str, index: int, sample: Mapping[str, Any], flow: np.ndarray) -> None:
        """``method``'s prediction ``flow`` for pair ``index`` (``sample`` as the dataset reader gives it: img1,
        flow, valid, name, sequence): its pictures are drawn in the background (an error there is raised here at a
        later call, or by :meth:`finish`)."""
        if method not in self.methods:
            self.methods.append(method)
        self._worker.submit(self._timed, self._draw_pair, method, index, sample, flow)

    def add_failure(self, method: str, item: Mapping[str, Any]) -> None:
        """A pair ``method`` failed on (``evaluate``'s ``on_failure`` item: index, name, sequence, error, and the
        sample when it could be read): a failed cell, with frame 1 and the truth when they exist."""
        if method not in self.methods:
            self.methods.append(method)
        self._worker.submit(self._timed, self._draw_failure, method, dict(item))

    def _row(self, index: int, name: str, sequence: str = "") -> _Row:
        row = self.rows.get(index)
        if row is None:
            row = self.rows[index] = _Row(index, str(name), str(sequence or ""))
        return row

    def _draw_inputs(self, row: _Row, sample: Mapping[str, Any], flow: Optional[np.ndarray]) -> None:
        """Frame 1 and the true flow's colors, once per pair; the row's color scale (the truth's largest magnitude,
        else the first prediction's)."""
        from flowcli.viz.color import flow_scale, flow_to_color

        if row.frame is not None or sample is None:
            return
        img1 = np.asarray(sample["img1"])
        row.size = (int(img1.shape[1]), int(img1.shape[0]))
        stem = f"{row.index:05d}"
        row.frame = self._save(img1, f"{stem}_frame1")
        gt = sample.get("flow")
        if gt is not None:
            valid = sample.get("valid")
            row.has_truth = True
            row.color_scale = flow_scale(gt, valid)
            row.truth = self._save(flow_to_color(gt, max_flow=row.color_scale, valid=valid), f"{stem}_truth")
        elif flow is not None:
            row.color_scale = flow_scale(flow)

    def _draw_pair(self, method: str, index: int, sample: Mapping[str, Any], flow: np.ndarray) -> None:
        from flowcli.viz.color import flow_to_color
        from flowcli.viz.panels import epe_map, error_to_color

        row = self._row(index, sample.get("name", f"pair {index}"), sample.get("sequence") or "")
        self._draw_inputs(row, sample, flow)
        if row.color_scale is None:
            from flowcli.viz.color import flow_scale

            row.color_scale = flow_scale(flow)
        stem = f"{index:05d}_{_slug(method)}"
        row.flows[method] = self._save(flow_to_color(flow, max_flow=row.color_scale), f"{stem}_flow")
        gt = sample.get("flow")
        if gt is not None:
            err = epe_map(flow, gt, sample.get("valid"))
            if row.error_scale is None:  # the first method to arrive sets the row's error scale
                finite = err[np.isfinite(err)]
                row.error_scale = nice_ceiling(float(np.percentile(finite, ERROR_PERCENTILE)) if finite.size else 1.0)
            row.errors[method] = self._save(error_to_color(err, row.error_scale), f"{stem}_error")

    def _draw_failure(self, method: str, item: dict) -> None:
        row = self._row(int(item["index"]), item.get("name", ""), item.get("sequence", ""))
        row.failed[method] = str(item.get("error") or "failed")
        if item.get("sample") is not None:
            self._draw_inputs(row, item["sample"], None)

    def _save(self, rgb: np.ndarray, stem: str) -> _Picture:
        """JPEG at full size and as a thumbnail, straight into the hidden folder (it appears whole, at the end)."""
        import cv2

        img = np.ascontiguousarray(np.asarray(rgb, np.uint8)[:, :, ::-1])  # RGB -> BGR for OpenCV
        h, w = img.shape[:2]
        full, thumb = f"full/{stem}.jpg", f"thumbs/{stem}.jpg"
        _write_jpeg(self.stage / full, img, FULL_QUALITY)
        if w > self.thumb_width:
            th = max(1, round(h * self.thumb_width / w))
            small = cv2.resize(img, (self.thumb_width, th), interpolation=cv2.INTER_AREA)
        else:
            small = img
        _write_jpeg(self.stage / thumb, small, THUMB_QUALITY)
        self.pictures += 2
        return _Picture(full, thumb, w, h, small.shape[1], small.shape[0])

    # ---------------------------------------------------------------------------------------- the page

    def finish(self, results: Mapping[str, Any], *, title: str, pairs: int, names: Sequence[tuple] = (),
               provenance: Optional[Mapping[str, Any]] = None, metric_rule: str = "") -> ReportSummary:
        """Wait for the pictures, write ``index.html`` (and the chart) and move the folder into place.

        ``results``: ``{method id: EvalResult}`` in the table's order; ``title``: the dataset and split; ``pairs``:
        how many pairs the run covered; ``names``: ``(name, sequence)`` of each of them, by index, for rows that no
        method reached; ``provenance``: what the "how it was made" list shows (an ordered mapping of label to text,
        or to a list of texts); ``metric_rule``: a line on how the AEE is averaged. Returns a
        :class:`ReportSummary`."""
        t0 = time.perf_counter()
        self._worker.close()
        t1 = time.perf_counter()
        left_out: List[str] = []
        chart = self._chart(results, title, left_out)
        from flowcli.io.image import write_image
        from flowcli.viz.color import color_wheel_legend

        write_image(self.stage / "wheel.png", color_wheel_legend(96))
        for i in range(pairs):  # a pair no method reached still gets its row
            if i not in self.rows:
                name, seq = names[i] if i < len(names) else (f"pair {i}", "")
                self.rows[i] = _Row(i, name, seq)
        page = _page(self, results, title=title, pairs=pairs, chart=chart, left_out=left_out,
                     provenance=provenance or {}, metric_rule=metric_rule)
        (self.stage / "index.html").write_text(page, encoding="utf-8")
        size = sum(f.stat().st_size for f in self.stage.rglob("*") if f.is_file())
        self._move_into_place()
        self.seconds += time.perf_counter() - t1
        self._done = True
        failed = sum(1 for r in self.rows.values() if r.failed)
        return ReportSummary(self.folder, len(self.rows), failed, self.pictures, size, self.seconds,
                             time.perf_counter() - t0, left_out)

    def _chart(self, results: Mapping[str, Any], title: str, left_out: List[str]) -> Optional[str]:
        from flowcli.jobs.charts import MISSING, band_chart, have_matplotlib
        from flowcli.metrics import magnitude_bin_labels

        bands = magnitude_bin_labels()
        summaries = {r.label: (r.summary or {}).get("by_magnitude") for r in results.values()}
        if not any(summaries.values()):
            return None
        if not have_matplotlib():
            left_out.append(f"the bar chart of the AEE by true motion: {MISSING}")
            return None
        first = next(b for b in summaries.values() if b)
        bands = [band for band in bands if (first.get(band) or {}).get("pixels")]  # a band no pixel falls in: no bars
        series = {label: [((b or {}).get(band) or {}).get("aee") for band in bands] for label, b in summaries.items()}
        shares = [(first.get(band) or {}).get("share") for band in bands]
        band_chart(self.stage / "aee_by_motion.png", bands, series, shares, title=f"{title}: AEE by true motion")
        return "aee_by_motion.png"

    def _move_into_place(self) -> None:
        """Rename the hidden folder onto ``folder``; an existing folder (empty, or replaced with ``overwrite``) goes
        aside first and is deleted after, so that a failure midway never leaves a mix of two reports."""
        target = self.folder
        old = None
        if target.exists():
            if any(target.iterdir()) and not self.overwrite:
                raise FileExistsError(17, "the report folder now holds other files; pass --overwrite to replace it",
                                      str(target))
            old = target.parent / f".{target.name}.old{os.getpid()}"
            os.rename(target, old)
        try:
            os.rename(self.stage, target)
        except BaseException:
            if old is not None:
                os.rename(old, target)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        """Stop drawing and delete the hidden folder (nothing is left behind)."""
        self._worker.abort()
        shutil.rmtree(self.stage, ignore_errors=True)

    def __enter__(self) -> "EvalReport":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self._done:
            self.abort()


def _preload_charts() -> None:
    from flowcli.jobs.charts import preload

    preload()


def _write_jpeg(path: Path, bgr: np.ndarray, quality: int) -> None:
    import cv2

    ok, enc = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a {bgr.shape[1]}x{bgr.shape[0]} picture as JPEG")
    path.write_bytes(enc.tobytes())


# -------------------------------------------------------------------------------------------------------- HTML

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5em; color: #222;
       background: #fafafa; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
p.lead { color: #555; margin-top: 0; } p.note { background: #fff4d6; border-left: 4px solid #e0a800;
         padding: 0.4em 0.8em; }
table { border-collapse: collapse; } th, td { padding: 0.25em 0.6em; }
table.num td, table.num th { border-bottom: 1px solid #ddd; } table.num td.n, table.num th.n { text-align: right;
         font-variant-numeric: tabular-nums; }
table.num tr.first td { border-top: 2px solid #999; }
#pairs { margin-top: 0.8em; } #pairs th { position: sticky; top: 0; background: #eee; font-weight: 600;
         text-align: left; vertical-align: bottom; } #pairs td { vertical-align: top; border-bottom: 1px solid #ddd; }
#pairs img { display: block; max-width: 200px; height: auto; border: 1px solid #ccc; }
#pairs tr.failed td.info { border-left: 4px solid #c00; }
td.info { min-width: 10em; max-width: 14em; font-size: 0.9em; } td.info b { font-size: 1.05em; word-break: break-all; }
.cap { font-size: 0.8em; color: #444; margin-top: 0.2em; }
.bar { display: inline-block; width: 64px; height: 0.8em; vertical-align: middle; border: 1px solid #999;
       background: linear-gradient(to right, %TURBO%); }
.fail { color: #c00; font-size: 0.85em; max-width: 200px; word-break: break-word; }
.none { color: #888; font-size: 0.85em; }
.legend { display: flex; gap: 2em; align-items: center; flex-wrap: wrap; }
.legend img { width: 72px; height: 72px; border-radius: 50%; } .legend > span { max-width: 44em; }
button { margin-right: 0.4em; } dl { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: 600; } dd { margin: 0; font-family: ui-monospace, monospace; font-size: 0.9em;
     white-space: pre-wrap; word-break: break-all; }
"""

# Inline, never fetched: sorts the pair rows, and marks the page with how many pictures loaded (a copy of the page
# without its folder says so at the top instead of showing empty frames).
_SCRIPT = """
function sortPairs(key) {
  const body = document.querySelector('#pairs tbody');
  const rows = Array.from(body.rows);
  rows.sort((a, b) => key === 'name' ? a.dataset.name.localeCompare(b.dataset.name)
                                     : parseFloat(b.dataset[key]) - parseFloat(a.dataset[key]));
  rows.forEach(r => body.appendChild(r));
}
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.dataset.images = imgs.length;
  document.body.dataset.broken = broken.length;
  document.body.dataset.brokenSrc = broken.map(i => i.getAttribute('src')).join(' ');
  if (broken.length) {
    const p = document.createElement('p');
    p.className = 'note';
    p.textContent = broken.length + ' of ' + imgs.length + ' pictures did not load: keep index.html in its folder.';
    document.body.insertBefore(p, document.body.firstChild);
  }
});
"""


def _turbo_stops(n: int = 9) -> str:
    """The CSS gradient of OpenCV's turbo colormap (what :func:`flowcli.viz.panels.error_to_color` uses)."""
    import cv2

    levels = np.round(np.linspace(0, 255, n)).astype(np.uint8).reshape(-1, 1)
    bgr = cv2.applyColorMap(levels, cv2.COLORMAP_TURBO).reshape(-1, 3)
    return ", ".join(f"#{r:02x}{g:02x}{b:02x}" for b, g, r in bgr)


def _js_number(x: float) -> str:
    return "Infinity" if x == math.inf else repr(float(x))  # what parseFloat reads back


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num_table(header: List[str], rows: List[List[str]], left: int, group_size: int = 0) -> str:
    out = ['<table class="num"><thead><tr>']
    out += [f'<th{"" if i < left else " class=n"}>{_e(h)}</th>' for i, h in enumerate(header)]
    out.append("</tr></thead><tbody>")
    for k, row in enumerate(rows):
        first = group_size and k % group_size == 0 and k > 0
        out.append(f'<tr{" class=first" if first else ""}>')
        out += [f'<td{"" if i < left else " class=n"}>{_e(c)}</td>' for i, c in enumerate(row)]
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _thumb(pic: Optional[_Picture], alt: str) -> str:
    if pic is None:
        return '<span class="none">-</span>'
    return (f'<a href="{_e(pic.full)}"><img src="{_e(pic.thumb)}" width="{pic.thumb_width}" '
            f'height="{pic.thumb_height}" alt="{_e(alt)}" '
            f'title="{_e(alt)} ({pic.width}x{pic.height}; click for full size)"></a>')


def _aee_of(results: Mapping[str, Any]) -> Dict[str, Dict[int, Optional[float]]]:
    """``{method: {pair index: AEE}}`` from the results' per-pair records (the numbers of ``--json``'s per_image)."""
    out: Dict[str, Dict[int, Optional[float]]] = {}
    for mid, r in results.items():
        out[mid] = {int(i): (st.as_dict()["aee"] if st is not None else None) for i, st, _ in r.records}
    return out


def _page(rep: EvalReport, results: Mapping[str, Any], *, title: str, pairs: int, chart: Optional[str],
          left_out: List[str], provenance: Mapping[str, Any], metric_rule: str) -> str:
    """The whole page: head and notes, the summary tables, one row per pair (worst first), how it was made."""
    methods = list(results) + [m for m in rep.methods if m not in results]
    labels = {mid: getattr(results.get(mid), "label", mid) for mid in methods}
    aee = _aee_of(results)
    first = methods[0] if methods else None

    def sort_value(row: _Row, mid: Optional[str]) -> float:
        if mid is None:
            return 0.0
        if mid in row.failed:
            return math.inf  # failed pairs first: they are the worst
        v = aee.get(mid, {}).get(row.index)
        return -1.0 if v is None else float(v)

    rows = sorted(rep.rows.values(), key=lambda r: (-sort_value(r, first), r.index))
    failed = sum(1 for r in rows if r.failed)
    parts = _head(title, pairs, len(methods), metric_rule, failed, left_out)
    parts += _summary(results, chart)
    parts += _pairs_table(rows, methods, labels, aee, sort_value)
    parts.append("<h2>How it was made</h2><dl>")
    for key, value in provenance.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        parts.append(f"<dt>{_e(key)}</dt><dd>{'<br>'.join(_e(v) for v in values)}</dd>")
    parts.append("</dl>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "\n".join(parts)


def _head(title: str, pairs: int, n_methods: int, metric_rule: str, failed: int, left_out: List[str]) -> List[str]:
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>flowcli eval report: {_e(title)}</title>",
             f"<style>{_CSS.replace('%TURBO%', _turbo_stops())}</style></head><body>",
             f"<h1>flowcli eval: {_e(title)}</h1>",
             f'<p class="lead">{pairs} pairs, {n_methods} method{"s" if n_methods != 1 else ""}'
             f'{"; " + _e(metric_rule) if metric_rule else ""}.</p>']
    if failed:
        parts.append(f'<p class="note">{failed} of {pairs} pairs failed; they are the first rows below, '
                     f'marked in red, and are not in the tables.</p>')
    for line in left_out:
        parts.append(f'<p class="note">Left out: {_e(line)}.</p>')
    return parts


def _summary(results: Mapping[str, Any], chart: Optional[str]) -> List[str]:
    """The per-group table and, where bands were measured, the chart and table of AEE by true motion."""
    from flowcli.jobs.evaluation import magnitude_rows, table_rows

    parts = ["<h2>Summary</h2>"]
    if any(getattr(r, "scored", 0) for r in results.values()):
        header, trows = table_rows(results, per_sequence=True)
        parts.append(_num_table(header, trows, 2, group_size=len(results)))
    else:
        parts.append('<p class="none">No pair had ground truth: nothing to score.</p>')
    mag_header, mag_rows = magnitude_rows(results)
    if any((getattr(r, "summary", None) or {}).get("by_magnitude") for r in results.values()):
        parts.append("<h2>AEE by true motion</h2>")
        if chart:
            parts.append(f'<p><img src="{_e(chart)}" alt="AEE by band of true motion, per method" '
                         f'style="max-width:100%;height:auto"></p>')
        parts.append(_num_table(mag_header, mag_rows, 1))
    return parts


def _pairs_table(rows: List[_Row], methods: List[str], labels: Mapping[str, str], aee: Mapping, sort_value
                 ) -> List[str]:
    """The legend, the sort buttons and one table row per pair."""
    parts = ["<h2>Pairs</h2>",
             '<div class="legend"><span><img src="wheel.png" alt="color wheel" width="72" height="72"></span>'
             '<span>Flow colors: hue = direction (right red, down yellow, left cyan, up violet), saturation = '
             'magnitude; white = no motion, black = no ground truth; darker beyond the scale. All pictures of a row '
             'share the true flow\'s scale (its largest magnitude), so colors compare across methods.</span>'
             '<span><span class="bar"></span> End-point error from 0 (dark blue) to the row\'s scale (dark red '
             'and beyond), shared by the row\'s methods.</span></div>']
    buttons = "".join(f'<button type="button" onclick="sortPairs(\'aee{k}\')">{_e(labels[m])} AEE, worst first'
                      f'</button>' for k, m in enumerate(methods))
    parts.append(f'<p>Sort: {buttons}<button type="button" onclick="sortPairs(\'name\')">name</button> '
                 f'<span class="none">Click a picture for its full size.</span></p>')
    head = ["<th>pair</th>", "<th>frame 1</th>", "<th>true flow</th>"]
    for m in methods:
        head += [f"<th>{_e(labels[m])}<br>colors</th>", f"<th>{_e(labels[m])}<br>end-point error</th>"]
    parts.append(f'<table id="pairs"><thead><tr>{"".join(head)}</tr></thead><tbody>')
    for row in rows:
        data = " ".join(f'data-aee{k}="{_js_number(sort_value(row, m))}"' for k, m in enumerate(methods))
        cls = ' class="failed"' if row.failed else ""
        cells = [_pair_info(row, methods, labels, aee)] + _pair_pictures(row, methods, labels)
        parts.append(f'<tr{cls} data-name="{_e(row.name)}" {data}>{"".join(cells)}</tr>')
    parts.append("</tbody></table>")
    return parts


def _pair_info(row: _Row, methods: List[str], labels: Mapping[str, str], aee: Mapping) -> str:
    """The first cell of a pair's row: its name, group, size, each method's AEE or failure, the color scale."""
    from flowcli.viz.color import px_text

    info = [f"<b>{_e(row.name)}</b>"]
    if row.sequence and row.sequence != row.name:
        info.append(f'<div class="cap">{_e(row.sequence)}</div>')
    if row.size:
        info.append(f'<div class="cap">{row.size[0]}x{row.size[1]}</div>')
    for m in methods:
        if m in row.failed:
            info.append(f'<div class="fail">{_e(labels[m])}: failed: {_e(row.failed[m])}</div>')
        else:
            v = aee.get(m, {}).get(row.index)
            info.append(f'<div>{_e(labels[m])}: {"AEE " + f"{v:.3f} px" if v is not None else "no AEE"}</div>')
    if row.color_scale is not None:
        info.append(f'<div class="cap">colors saturate at {px_text(row.color_scale)}</div>')
    return f'<td class="info">{"".join(info)}</td>'


def _pair_pictures(row: _Row, methods: List[str], labels: Mapping[str, str]) -> List[str]:
    """The picture cells of a pair's row: frame 1, the true flow, then each method's colors and error map."""
    cells = [f"<td>{_thumb(row.frame, f'{row.name}: frame 1')}</td>"]
    truth = (_thumb(row.truth, f"{row.name}: true flow") if row.has_truth
             else '<span class="none">no ground truth</span>')
    cells.append(f"<td>{truth}</td>")
    for m in methods:
        if m in row.failed:
            cells += [f'<td><div class="fail">failed: {_e(row.failed[m])}</div></td>', "<td></td>"]
            continue
        cells.append(f"<td>{_thumb(row.flows.get(m), f'{row.name}: {labels[m]} colors')}</td>")
        if m in row.errors:
            cap = f'<div class="cap">0 <span class="bar"></span> {row.error_scale:g} px</div>'
            cells.append(f"<td>{_thumb(row.errors[m], f'{row.name}: {labels[m]} end-point error')}{cap}</td>")
        else:
            cells.append('<td><span class="none">no ground truth</span></td>' if not row.has_truth else "<td></td>")
    return cells
