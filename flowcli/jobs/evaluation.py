"""The evaluation job behind ``flowcli eval``: score flow methods on a dataset split the way its benchmark does.

* :func:`evaluate` runs one method (anything with ``estimate_batch(pairs, batch_size=...)``: the network's
  :class:`flowcli.api.Estimator` or a :class:`flowcli.baselines.BaselineEstimator`) over a dataset reader from
  :mod:`flowcli.data.datasets`, scores the pairs that have ground truth with a
  :class:`flowcli.metrics.MetricAccumulator` of the dataset's ``metric_kind``, and optionally writes every
  prediction in the benchmark's upload layout (:func:`flowcli.data.datasets.write_submission`).  Pairs without
  ground truth (test splits) are only predicted.  Returns an :class:`EvalResult`.
* :func:`compare` runs several methods over one dataset -> ``{method: EvalResult}``.
* :func:`table_rows` and :func:`markdown_table` lay results out as rows (whole split, then per sequence) for the
  command's rich table and for the Markdown of the README and the model card; :func:`magnitude_rows` gives the AEE
  per band of true motion magnitude (where a method fails), :func:`boundary_rows` the AEE by distance to the nearest
  motion boundary of the ground truth (whether a fast object's flow bleeds into the background beside it).
* :func:`machine_description` says where a run happened (results without it mean little).

:func:`evaluate` also feeds a report (:mod:`flowcli.jobs.report`) as it goes: ``on_pair`` receives every pair's sample
and prediction, and with ``on_failure`` a pair that cannot be read or predicted is recorded (``EvalResult.failed``)
and skipped instead of ending the run.

No click, rich or torch here (the network's estimator brings torch along itself).
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from flowcli.errors import GroundTruthError
from flowcli.metrics import MetricAccumulator, boundary_bin_labels, magnitude_bin_labels

__all__ = ["COLUMNS", "EvalResult", "boundary_rows", "check_scorable", "compare", "evaluate", "machine_description",
           "magnitude_rows", "markdown_by_group", "markdown_rows", "markdown_table", "merge_results", "method_name",
           "markdown_from_report", "markdown_report", "open_split", "prepare_split", "report", "missing_gt_error",
           "table_rows"]


@dataclass
class EvalResult:
    """One method on one dataset split.

    ``summary``/``per_sequence``/``per_image`` are :class:`~flowcli.metrics.MetricAccumulator`'s
    (``summary`` None when no pair had ground truth); ``pairs`` counts the pairs predicted, ``scored`` those with
    ground truth; ``seconds`` is the time spent inside the method (reading and scoring excluded), so
    ``seconds_per_pair`` compares methods fairly; ``written`` lists the submission files, relative to
    ``submission_dir``.
    """

    method: str
    label: str
    dataset: str
    split: str
    root: str
    metric_kind: str
    passes: str = ""  # the render passes scored (Sintel, Things), e.g. "final" or "clean+final"
    pairs: int = 0
    scored: int = 0
    seconds: float = 0.0
    summary: Optional[dict] = None
    per_sequence: Dict[str, dict] = field(default_factory=dict)
    per_image: List[dict] = field(default_factory=list)
    submission_dir: Optional[str] = None
    written: List[str] = field(default_factory=list)
    # (pair index, ImageStats or None, submission path or None) per pair predicted, for merge_results; not in the JSON
    records: List[tuple] = field(default_factory=list, repr=False, compare=False)
    # {"index", "name", "sequence", "error"} per pair skipped with evaluate(on_failure=...); not in the JSON
    failed: List[dict] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "EvalResult":
        """Back from :meth:`to_dict` (a ``flowcli eval --json`` document's ``methods`` entry)."""
        fields = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**{**fields, "passes": fields.get("passes") or ""})

    @property
    def seconds_per_pair(self) -> Optional[float]:
        return self.seconds / self.pairs if self.pairs else None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (NaN/inf become None so that the JSON is strict)."""
        return _clean({
            "method": self.method,
            "label": self.label,
            "dataset": self.dataset,
            "split": self.split,
            "passes": self.passes or None,
            "root": self.root,
            "metric_kind": self.metric_kind,
            "pairs": self.pairs,
            "scored": self.scored,
            "seconds": self.seconds,
            "seconds_per_pair": self.seconds_per_pair,
            "summary": self.summary,
            "per_sequence": self.per_sequence,
            "per_image": self.per_image,
            "submission_dir": self.submission_dir,
            "written": self.written,
        })


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def method_name(estimator: Any) -> tuple[str, str]:
    """``(id, label)`` of a method: a baseline's own name, ``liteflownet`` with its checkpoint's name for the
    network, else the class name."""
    name = getattr(estimator, "name", None)
    if isinstance(name, str) and name:
        return name, getattr(estimator, "label", None) or name
    ckpt = getattr(estimator, "checkpoint", None)
    if ckpt is not None:
        weights = (getattr(ckpt, "meta", None) or {}).get("name") or "weights"
        scale = getattr(estimator, "scale", 1.0)
        at = f", scale {scale:g}" if scale != 1 else ""  # a table row must say how the network was run
        recipe = getattr(estimator, "recipe", None)
        if recipe is None or recipe.is_plain:
            return "liteflownet", f"LiteFlowNet ({weights}{at})"
        base = recipe.name.split(" x")[0]
        # the weights' default keeps the id earlier reports use; a preset's row gets its own
        return ("liteflownet-recipe" if base in ("default", "custom") else f"liteflownet-{base}",
                f"LiteFlowNet + {base} recipe ({weights}{at})")
    cls = type(estimator).__name__
    return cls.lower(), cls


def _gt_path_hint(dataset: Any, index: int) -> str:
    """Where ground truth for pair ``index`` would have to be, for the error message."""
    pairs = getattr(dataset, "pairs", None)
    pair = pairs[index] if pairs is not None and index < len(pairs) else None
    name = getattr(dataset, "name", "")
    root = Path(getattr(dataset, "root", "."))
    if pair is not None and name == "folder":
        return str(Path(pair.img1).parent / "gt.flo")  # or gt_flow_kitti.png/.pfm/.npy/.npz
    if name == "sintel":
        return str(root / "training" / "flow")
    if name in ("kitti2012", "kitti2015"):
        return str(root / "training" / "flow_occ")
    if name == "middlebury":
        return str(root / "other-gt-flow")
    return str(root)


def missing_gt_error(dataset: Any, index: int = 0) -> GroundTruthError:
    """The one-line error for a split whose pairs lack ground truth while nothing is to be written."""
    name = getattr(dataset, "name", "dataset")
    pairs = getattr(dataset, "pairs", None)
    hint = _gt_path_hint(dataset, index)
    if name == "folder":
        what = pairs[index].name if pairs is not None and index < len(pairs) else f"pair {index}"
        return GroundTruthError(name, f"pair {what}", hint,
                                detail=" or gt_flow_kitti.png, gt.pfm, gt.npy, gt.npz beside img1")
    split = getattr(dataset, "split", "")
    return GroundTruthError(name, f"split {split!r} under {getattr(dataset, 'root', '?')}", f"it in {hint}",
                            detail=", which only the training split has")


def _has_gt(dataset: Any, index: int) -> Optional[bool]:
    """Whether pair ``index`` has ground truth, from the reader's listing (None: unknown until loaded)."""
    pairs = getattr(dataset, "pairs", None)
    if pairs is None or index >= len(pairs):
        return None
    return getattr(pairs[index], "flow", None) is not None


def check_scorable(dataset: Any, *, limit: Optional[int] = None) -> None:
    """Raise :func:`missing_gt_error` for the first of the first ``limit`` pairs that the reader lists without
    ground truth (a no-op for readers that do not list their files ahead)."""
    n = len(dataset) if limit is None else min(len(dataset), int(limit))
    for i in range(n):
        if _has_gt(dataset, i) is False:
            raise missing_gt_error(dataset, i)


def _samples(dataset: Any, indices: Sequence[int], keep_going: bool = False):
    """``(index, sample, None)`` per pair; with ``keep_going`` a pair that cannot be read gives
    ``(index, None, exception)`` instead of ending the stream."""
    for i in indices:
        if not keep_going:
            yield i, dataset[i], None
            continue
        try:
            sample = dataset[i]
        except (OSError, ValueError) as exc:  # an unreadable or mismatched file: this pair's problem only
            yield i, None, exc
            continue
        yield i, sample, None


def _pair_name(dataset: Any, index: int) -> tuple[str, str]:
    """``(name, sequence)`` of pair ``index`` from the reader's listing (``pair <index>`` when it has none)."""
    pairs = getattr(dataset, "pairs", None)
    if pairs is not None and 0 <= index < len(pairs):
        return str(pairs[index].name), str(getattr(pairs[index], "sequence", "") or "")
    return f"pair {index}", ""


def _fail(result: "EvalResult", dataset: Any, index: int, error: BaseException | str, sample: Optional[dict],
          on_failure: Callable[[dict], None], on_item: Optional[Callable[[dict], None]]) -> None:
    """Record pair ``index`` as failed in ``result`` and tell ``on_failure`` (with the sample when it was read) and
    ``on_item`` (so that progress counts it)."""
    name, sequence = _pair_name(dataset, index)
    if sample is not None:
        name, sequence = str(sample.get("name", name)), str(sample.get("sequence") or sequence)
    text = " ".join(str(error).split()) or type(error).__name__
    item = {"index": index, "name": name, "sequence": sequence, "error": text}
    result.failed.append(item)
    on_failure({**item, "sample": sample})
    if on_item is not None:
        on_item({**item, "metrics": None, "written": None})


def _pairs_to_run(dataset: Any, limit: Optional[int], batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    n = len(dataset) if limit is None else min(len(dataset), int(limit))
    if n == 0:
        raise ValueError(f"{getattr(dataset, 'name', 'dataset')}: no pairs to evaluate under "
                         f"{getattr(dataset, 'root', '?')}")
    return n


def evaluate(dataset: Any, estimator: Any, *, limit: Optional[int] = None, batch_size: int = 4,
             on_item: Optional[Callable[[dict], None]] = None, submission_dir: Optional[str | os.PathLike] = None,
             method: Optional[str] = None, label: Optional[str] = None, prefetch: bool = True,
             indices: Optional[Sequence[int]] = None,
             on_pair: Optional[Callable[[int, dict, np.ndarray], None]] = None,
             on_failure: Optional[Callable[[dict], None]] = None) -> EvalResult:
    """Run ``estimator`` over ``dataset`` (a reader from :func:`flowcli.data.datasets.open_dataset`, or any
    sequence of sample dicts) and score it.

    ``limit``: only the first N pairs.  ``batch_size``: pairs handed to ``estimate_batch`` at once.
    ``on_item``: called after each pair with ``{"index", "name", "sequence", "metrics" (the pair's own metrics, or
    None without ground truth), "written" (submission path or None)}`` - the command drives its progress bar
    with it.  ``submission_dir``: also write every prediction there in the benchmark's upload layout (Sintel
    ``PASS/SCENE/frame_%04d.flo``, KITTI 16-bit ``%06d_10.png``).  ``method``/``label``: names in the result
    (default: :func:`method_name`).  ``indices``: only these of the first N pairs (one process's share of a job
    that several share; :func:`merge_results` puts the parts together).  ``on_pair(index, sample, flow)``: called
    with each pair's sample dict and the method's flow once it is scored (a report draws its pictures there).
    ``on_failure(item)``: given, a pair whose files cannot be read (OSError/ValueError) or whose flow is non-finite or
    wrongly sized is skipped, listed in ``result.failed`` and passed here as ``{"index", "name", "sequence", "error",
    "sample" (None when it could not be read)}``; the other pairs are scored as usual.

    Raises a one-line ValueError naming the expected ground-truth path when a pair has no ground truth and no
    ``submission_dir`` is given (nothing would come of the run), and RuntimeError when the method returns
    non-finite or wrongly sized flow.
    """
    n = _pairs_to_run(dataset, limit, batch_size)
    if submission_dir is None:
        # decide before the (slow) estimation: a split without ground truth and nowhere to write is a mistake
        check_scorable(dataset, limit=n)
    mid, mlabel = method_name(estimator)
    kind = getattr(dataset, "metric_kind", "sintel")
    result = EvalResult(method=method or mid, label=label or mlabel,
                        dataset=getattr(dataset, "name", type(dataset).__name__), split=str(getattr(dataset, "split", "")),
                        passes="+".join(getattr(dataset, "passes", None) or ()),
                        root=str(getattr(dataset, "root", "")), metric_kind=kind,
                        submission_dir=str(submission_dir) if submission_dir is not None else None)
    acc = MetricAccumulator(kind)
    out_dir = Path(submission_dir) if submission_dir is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    stream = _samples(dataset, range(n) if indices is None else [i for i in indices if 0 <= i < n],
                      keep_going=on_failure is not None)
    if prefetch:
        # decoding PNGs and .flo files overlaps with the method's work
        from flowcli.threads import prefetch as _prefetch

        stream = _prefetch(stream, maxsize=2 * batch_size, name="read-samples")
    batch: List[tuple] = []
    try:
        for i, sample, error in stream:
            if error is not None:
                _fail(result, dataset, i, error, None, on_failure, on_item)
                continue
            batch.append((i, sample))
            if len(batch) >= batch_size:
                _run_batch(batch, estimator, batch_size, acc, result, dataset, out_dir, on_item, on_pair, on_failure)
                batch = []
        if batch:
            _run_batch(batch, estimator, batch_size, acc, result, dataset, out_dir, on_item, on_pair, on_failure)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # stops the reading thread at once when the method fails or the user interrupts

    if len(acc):
        result.summary = acc.summary()
        result.per_sequence = acc.per_sequence()
        result.per_image = acc.per_image()
    return result


def split_name(dataset: Any) -> str:
    """The split as a table names it, with the render passes where the dataset has them (``training clean``)."""
    split = str(getattr(dataset, "split", ""))
    passes = getattr(dataset, "passes", None)
    return f"{split} {'+'.join(passes)}" if passes else split


def _run_batch(batch, estimator, batch_size, acc, result, dataset, out_dir, on_item, on_pair=None,
               on_failure=None) -> None:
    t0 = time.perf_counter()
    flows = estimator.estimate_batch([(s["img1"], s["img2"]) for _, s in batch], batch_size=batch_size)
    result.seconds += time.perf_counter() - t0
    for (i, s), flow in zip(batch, flows):
        h, w = s["img1"].shape[:2]
        flow = np.asarray(flow)
        problem = None
        if flow.shape != (h, w, 2):
            problem = f"{result.method} returned flow of shape {flow.shape} for {s['name']} ({w}x{h})"
        elif not np.isfinite(flow).all():
            problem = f"{result.method} returned non-finite flow for {s['name']}"
        if problem is not None:
            if on_failure is None:
                raise RuntimeError(problem)
            _fail(result, dataset, i, problem, s, on_failure, on_item)
            continue
        result.pairs += 1
        metrics, stats = None, None
        if s.get("flow") is not None:
            metrics = acc.add(flow, s["flow"], s.get("valid"), s.get("occ"), name=str(s["name"]),
                              sequence=str(s.get("sequence") or ""))
            stats = acc.images[-1]
            result.scored += 1
        elif out_dir is None:
            raise missing_gt_error(dataset, i)  # only for readers that do not list their files ahead
        written = None
        if out_dir is not None:
            from flowcli.data.datasets import write_submission

            path = write_submission(out_dir, result.dataset, s, flow)
            written = path.relative_to(out_dir).as_posix()
            result.written.append(written)
        result.records.append((i, stats, written))
        if on_pair is not None:
            on_pair(i, s, flow)
        if on_item is not None:
            on_item({"index": i, "name": s["name"], "sequence": s.get("sequence") or "", "metrics": metrics,
                     "written": written})


def merge_results(parts: Sequence[EvalResult]) -> EvalResult:
    """One method's result from the results of processes that each evaluated a share of the pairs
    (``evaluate(..., indices=...)``): the per-image sums of all parts in pair order, aggregated by the same rule, so
    that summary, per-sequence and per-image results equal a single run's. ``seconds`` is the time spent inside the
    method by all parts together (``seconds_per_pair`` stays the cost of one pair)."""
    from dataclasses import replace

    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    records = sorted((r for p in parts for r in p.records), key=lambda r: r[0])
    acc = MetricAccumulator(first.metric_kind)
    for _, stats, _ in records:
        if stats is not None:
            acc.add_stats(stats)
    out = replace(first, pairs=sum(p.pairs for p in parts), scored=sum(p.scored for p in parts),
                  seconds=sum(p.seconds for p in parts), summary=None, per_sequence={}, per_image=[],
                  written=[w for _, _, w in records if w is not None], records=records,
                  failed=sorted((f for p in parts for f in p.failed), key=lambda f: f["index"]))
    if len(acc):
        out.summary, out.per_sequence, out.per_image = acc.summary(), acc.per_sequence(), acc.per_image()
    return out


def compare(dataset: Any, methods: Mapping[str, Any] | Sequence[Any], **kwargs) -> Dict[str, EvalResult]:
    """Run several methods over one dataset: ``{id: EvalResult}`` in the given order.

    ``methods`` is ``{id: estimator}`` or a list of estimators (ids from :func:`method_name`).  Keyword arguments
    go to :func:`evaluate`; ``on_item`` additionally receives ``"method"`` in its dict.
    """
    if not isinstance(methods, Mapping):
        methods = {method_name(m)[0]: m for m in methods}
    on_item = kwargs.pop("on_item", None)
    out: Dict[str, EvalResult] = {}
    for mid, est in methods.items():
        cb = None
        if on_item is not None:
            cb = (lambda d, _m=mid: on_item({**d, "method": _m}))
        out[mid] = evaluate(dataset, est, on_item=cb, method=mid, **kwargs)
    return out


# ---------------------------------------------------------------------------------------------------- tables

#: (key, header, kind) of the table columns; kind "px" = plain value, "pct" = fraction shown in percent.
COLUMNS = (
    ("aee", "AEE", "px"),
    ("aee_noc", "AEE noc", "px"),
    ("aee_occ", "AEE occ", "px"),
    ("acc1", "<1px %", "pct"),
    ("acc3", "<3px %", "pct"),
    ("acc5", "<5px %", "pct"),
    ("fl_all", "Fl-all %", "pct"),
)


def _fmt(value: Optional[float], kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{100 * value:.2f}" if kind == "pct" else f"{value:.3f}"


def table_columns(results: Mapping[str, EvalResult]) -> List[tuple]:
    """The metric columns worth showing: AEE noc/occ only when some result has occlusion masks."""
    has_occ = any(r.summary and r.summary.get("aee_noc") is not None for r in results.values())
    return [c for c in COLUMNS if has_occ or c[0] not in ("aee_noc", "aee_occ")]


def table_rows(results: Mapping[str, EvalResult], *, per_sequence: bool = False) -> tuple[List[str], List[List[str]]]:
    """``(header, rows)`` of strings: for each group (the whole split first, then each sequence with
    ``per_sequence``) one row per method, so that methods sit next to each other.  Columns: group, method, the
    metrics of :func:`table_columns`, pairs, seconds per pair."""
    cols = table_columns(results)
    header = ["group", "method"] + [c[1] for c in cols] + ["pairs", "s/pair"]
    rows: List[List[str]] = []

    def row(group: str, r: EvalResult, s: Optional[dict], timing: bool) -> List[str]:
        vals = [_fmt(s.get(k) if s else None, kind) for k, _, kind in cols]
        spp = r.seconds_per_pair
        n = s["images"] if s else r.pairs
        return [group, r.label] + vals + [str(n), f"{spp:.3f}" if timing and spp is not None else ""]

    for r in results.values():
        rows.append(row(_split_label(r), r, r.summary, True))
    if per_sequence:
        groups: List[str] = []
        for r in results.values():
            groups += [g for g in r.per_sequence if g not in groups]
        for g in sorted(groups):
            for r in results.values():
                if g in r.per_sequence:
                    rows.append(row(g or "(none)", r, r.per_sequence[g], False))
    return header, rows


def _split_label(r: EvalResult) -> str:
    split = f"{r.split} {r.passes}".strip() if r.split != "all" else r.passes
    return f"{r.dataset} {split}".strip() if split else f"{r.dataset} (all)"


def markdown_table(results: Mapping[str, EvalResult], *, per_sequence: bool = False) -> str:
    """The :func:`table_rows` table as GitHub Markdown (numbers right-aligned), ending in a newline."""
    return markdown_rows(*table_rows(results, per_sequence=per_sequence), left=2)


def magnitude_rows(results: Mapping[str, EvalResult]) -> tuple[List[str], List[List[str]]]:
    """``(header, rows)`` of the AEE per band of true motion magnitude (:data:`flowcli.metrics.MAGNITUDE_BINS`),
    pooled over the pixels of the whole split: a row per method, then the share of pixels in each band."""
    return _band_rows(results, "by_magnitude", magnitude_bin_labels())


def boundary_rows(results: Mapping[str, EvalResult]) -> tuple[List[str], List[List[str]]]:
    """``(header, rows)`` of the AEE per band of distance to the nearest motion boundary of the ground truth
    (:data:`flowcli.metrics.BOUNDARY_BINS`: 0-10, 10-60, 60+ px), pooled over the pixels of the whole split: a row per
    method, then the share of pixels in each band."""
    return _band_rows(results, "by_boundary", boundary_bin_labels())


def _band_rows(results: Mapping[str, EvalResult], key: str, labels: List[str]) -> tuple[List[str], List[List[str]]]:
    """The rows of :func:`magnitude_rows`/:func:`boundary_rows` from the summaries' bands under ``key``."""
    header = ["method"] + [f"{b} px" for b in labels]
    rows: List[List[str]] = []
    bands = None
    for r in results.values():
        bands = (r.summary or {}).get(key) or {}
        rows.append([r.label] + [_fmt((bands.get(b) or {}).get("aee"), "px") for b in labels])
    if bands:
        rows.append(["share of pixels"] + [_fmt((bands.get(b) or {}).get("share"), "pct") + " %" for b in labels])
    return header, rows


def _band_tables(results: Mapping[str, EvalResult], *, by_magnitude: bool, by_boundary: bool) -> str:
    """The Markdown of the band tables asked for (each after a blank line), or ''."""
    text = ""
    if by_magnitude:
        text += "\n" + markdown_rows(*magnitude_rows(results))
    if by_boundary:
        text += "\n" + markdown_rows(*boundary_rows(results))
    return text


def markdown_rows(header: List[str], rows: List[List[str]], *, left: int = 1) -> str:
    """A header and rows of strings as GitHub Markdown, the first ``left`` columns left-aligned and the rest (numbers)
    right-aligned, ending in a newline."""
    align = ["---"] * left + ["---:"] * (len(header) - left)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def machine_description(devices: Sequence[str] = ()) -> str:
    """Where a run happened: OS, CPU model and count, and the names of the CUDA ``devices`` among those given."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    text = f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} CPUs"
    cuda = sorted({d for d in devices if str(d).startswith("cuda")})
    if cuda:
        import torch

        text += ", " + ", ".join(torch.cuda.get_device_name(torch.device(d)) for d in cuda)
    return text


PASSES = ("clean", "final", "both")
HAS_PASSES = ("sintel", "things")


def open_split(dataset: str, root: str | os.PathLike, split: Optional[str] = None, passes: Optional[str] = None):
    """The dataset reader for a split (and, for Sintel and Things, render passes: ``clean``, ``final`` or ``both``);
    a dataset without passes given ``passes`` is a ValueError."""
    from flowcli.data.datasets import open_dataset

    kw = {}
    if passes is not None:
        if dataset not in HAS_PASSES:
            raise ValueError(f"{dataset} has no passes (only {', '.join(HAS_PASSES)} do)")
        kw["passes"] = passes
    return open_dataset(dataset, root, split, **kw)


def report(dataset: Any, results: Mapping[str, EvalResult], *, pairs: int, stamp: str, machine: str) -> dict:
    """The JSON document of a run: the split, when and where, and every method's results."""
    return {"dataset": dataset.name, "split": dataset.split, "passes": "+".join(getattr(dataset, "passes", None) or ())
            or None, "root": str(dataset.root), "pairs": pairs,
            "date": stamp, "machine": machine, "methods": {mid: r.to_dict() for mid, r in results.items()}}


def markdown_report(dataset: Any, results: Mapping[str, EvalResult], *, pairs: int, per_sequence: bool = False,
                    by_magnitude: bool = False, by_boundary: bool = False, stamp: str = "", machine: str = "") -> str:
    """The run's tables as Markdown, with a caption saying when and where (s/pair only means something with the
    machine beside it); ``by_magnitude``/``by_boundary`` add the AEE by true motion and by distance to the nearest
    motion boundary."""
    text = markdown_table(results, per_sequence=per_sequence)
    text += _band_tables(results, by_magnitude=by_magnitude, by_boundary=by_boundary)
    return text + f"\n{dataset_label(dataset)}, {pairs} pairs; measured {stamp} on {machine}.\n"


def dataset_label(dataset: Any) -> str:
    """``sintel training final``, ``folder``: the dataset and its split as a caption names them."""
    split = split_name(dataset) if not isinstance(dataset, Mapping) else " ".join(
        x for x in (dataset.get("split"), dataset.get("passes")) if x)
    name = dataset["dataset"] if isinstance(dataset, Mapping) else dataset.name
    return f"{name} {split}".strip() if split not in ("", "all") else name


def markdown_by_group(results: Mapping[str, EvalResult]) -> str:
    """One row per method, one AEE column per group (the per-sequence summaries) and the whole set, then s/pair: the
    compact table of many methods over few groups."""
    groups = list(dict.fromkeys(g for r in results.values() for g in (r.per_sequence or {})))
    head = ["method", *groups, "all", "s/pair"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in results.values():
        cells = [_aee_cell((r.per_sequence or {}).get(g)) for g in groups] + [_aee_cell(r.summary)]
        lines.append(f"| {r.label} | " + " | ".join(cells) + f" | {r.seconds_per_pair:.2f} |")
    return "\n".join(lines) + "\n"


def _aee_cell(summary: Optional[Mapping[str, Any]]) -> str:
    return "" if not summary or summary.get("aee") is None else f"{summary['aee']:.3f}"


def markdown_from_report(doc: Mapping[str, Any], *, per_sequence: bool = True, by_magnitude: bool = True,
                         by_boundary: bool = False, compact: bool = False) -> str:
    """:func:`markdown_report` of a saved JSON document (:func:`report`): the tables of the README and the model card
    are generated from the measurement itself, never copied by hand. ``compact``: :func:`markdown_by_group` (AEE per
    group and method) instead of the full table. ``by_boundary`` (off by default) adds the AEE by distance to the
    nearest motion boundary, from the document's ``by_boundary`` bands ('-' where it has none)."""
    results = {mid: EvalResult.from_dict(r) for mid, r in doc["methods"].items()}
    if not compact:
        return markdown_report(doc, results, pairs=doc["pairs"], per_sequence=per_sequence, by_magnitude=by_magnitude,
                               by_boundary=by_boundary, stamp=doc.get("date", ""), machine=doc.get("machine", ""))
    text = markdown_by_group(results)
    text += _band_tables(results, by_magnitude=by_magnitude, by_boundary=by_boundary)
    return text + (f"\n{dataset_label(doc)}, {doc['pairs']} pairs, AEE in pixels (per group the mean of its pairs); "
                   f"measured {doc.get('date', '')} on {doc.get('machine', '')}.\n")


def prepare_split(dataset: str, root: str | os.PathLike, split: Optional[str] = None, passes: Optional[str] = None, *,
                  limit: Optional[int] = None, submission_dir: Optional[str | os.PathLike] = None,
                  outputs: Sequence[str | os.PathLike] = ()) -> tuple[Any, int]:
    """The reader of a split and the number of pairs to run, checked before any method loads: a split without ground
    truth and nowhere to write raises :class:`~flowcli.errors.GroundTruthError`, and an output (``outputs``, the
    submission files) that would replace one of the split's files raises
    :class:`~flowcli.errors.OutputCollisionError`."""
    from flowcli.data.datasets import submission_path

    ds = open_split(dataset, root, split, passes)
    n = len(ds) if limit is None else min(int(limit), len(ds))
    if submission_dir is None:
        check_scorable(ds, limit=n)
    pairs = list(getattr(ds, "pairs", []))[:n]
    inputs = [f for q in pairs for f in (q.img1, q.img2, q.flow, q.occ, q.invalid, q.flow_noc) if f]
    planned = list(outputs)
    if submission_dir is not None:
        planned += [Path(submission_dir) / submission_path(ds, {"name": q.name}) for q in pairs]
    _check_distinct(inputs, planned)
    return ds, n


def _check_distinct(inputs: Sequence, outputs: Sequence) -> None:
    from flowcli.errors import OutputCollisionError

    seen = {os.path.realpath(p): p for p in inputs}
    for out in outputs:
        if os.path.realpath(out) in seen:
            raise OutputCollisionError(out, seen[os.path.realpath(out)])
