"""Summary tables, derived from per-image rows only. Formatting reads each metric's declared metadata."""

from __future__ import annotations

import json
import math

import pandas as pd

from sr_bench.metrics import metric_info
from sr_bench.report.compare import half_width
from sr_bench.store.schema import metric_columns

KEYS = ["model", "dataset", "scale_text"]
INCOMPLETE_MARK = "*"  # a mean over fewer images than the dataset has (as report.paper_table.INCOMPLETE)
UNVERIFIED_MARK = "?"  # a published value the card has not checked
UNVERIFIED_MEANING = f"{UNVERIFIED_MARK} not verified against the paper (the card copied it from a secondary source)"


def summarize(rows: pd.DataFrame, manifest: dict | None = None) -> pd.DataFrame:
    """Mean of per-image values per (model, dataset, scale) for every metric column (``metric_columns``, plugin
    metrics included; NaN where never measured); ``n_images`` counts the measured (error-free) rows, ``n_failed``
    the error rows, ``n_<metric>`` the images each metric's mean covers (fewer than ``n_images`` where that metric
    alone failed on some: the rows' ``metric_errors``) and ``n_total`` the images of the dataset
    (``dataset_sizes``). A (model, dataset, scale) whose every row failed is kept, with NaN means."""
    failed_mask = rows["error"].fillna("") != ""
    ok = rows[~failed_mask]
    order = {k: {v: i for i, v in enumerate(pd.unique(rows[k]))} for k in ("model", "dataset")}
    every = rows.groupby(KEYS, sort=False)
    grouped = ok.groupby(KEYS, sort=False)
    metrics = list(metric_columns(rows))
    out = grouped[metrics].mean().reindex(every.size().index)
    counts = grouped[metrics].count().reindex(out.index).fillna(0).astype(int)
    out.insert(0, "n_images", grouped.size().reindex(out.index).fillna(0).astype(int))
    out.insert(1, "n_failed", rows[failed_mask].groupby(KEYS).size().reindex(out.index).fillna(0).astype(int))
    out["scale"] = every["scale"].first()
    out["untrained"] = every["untrained"].any()
    out[[f"n_{m}" for m in metrics]] = counts.to_numpy()
    out = out.reset_index()
    sizes = dataset_sizes(rows, manifest)
    out.insert(5, "n_total", out["dataset"].map(sizes).astype(int))
    out["_m"] = out["model"].map(order["model"])
    out["_d"] = out["dataset"].map(order["dataset"])
    out = out.sort_values(["_m", "_d", "scale"]).drop(columns=["_m", "_d"]).reset_index(drop=True)
    return out


def dataset_sizes(rows: pd.DataFrame, manifest: dict | None = None) -> dict[str, int]:
    """Images per dataset: those run.json records (``datasets[].images``), or the distinct images of its rows when
    more (or when run.json has none): what a mean must cover to be complete."""
    sizes = rows.groupby("dataset")["image"].nunique().to_dict()
    for d in (manifest or {}).get("datasets") or []:
        if isinstance(d, dict) and d.get("name") in sizes and isinstance(d.get("images"), int):
            sizes[d["name"]] = max(sizes[d["name"]], d["images"])
    return sizes


def coverage_text(rows: pd.DataFrame, model: str, dataset: str, scale: str, n: int, total: int) -> str:
    """'1 of 5 images; 4 failed (e.g. RuntimeError: ...)': how much of the dataset a mean covers, and why not all."""
    part = rows[(rows["model"] == model) & (rows["dataset"] == dataset) & (rows["scale_text"] == scale)]
    errors = part[part["error"].fillna("") != ""]
    text = f"{n} of {total} images"
    if len(errors):
        kinds = list(dict.fromkeys(str(e) for e in errors["error"]))
        more = f" and {len(kinds) - 1} other error(s)" if len(kinds) > 1 else ""
        text += f"; {len(errors)} failed (e.g. {errors['image'].iloc[0]}: {kinds[0]}{more})"
    missing = total - n - len(errors)
    if missing > 0:
        text += f"; {missing} not measured (no row, or no value for this metric)"
    return text


def to_csv(summary: pd.DataFrame, sources: list[str] | None = None) -> str:
    """The columns ``model,dataset,scale,n_images,psnr,ssim,lpips`` and one per plugin metric (a metric never
    measured stays empty), then ``<metric>_ci95`` where ``with_ci`` added them and the cost columns of
    ``paper_table.with_cost``; with ``sources`` also ``paper_<metric>`` for every metric and ``paper_source`` (the
    card's source text)."""
    metrics = metric_columns(summary)
    cols = ["model", "dataset", "scale", "n_images", *metrics]
    cols += [f"{m}_ci95" for m in metrics if f"{m}_ci95" in summary]
    cols += [c for c in ("params", "seconds", "gflops", "flops_per_second", "mfu", "peak_memory") if c in summary]
    df = summary.assign(scale=summary["scale_text"])
    if sources is not None:
        cols += [f"paper_{m}" for m in metrics if f"paper_{m}" in df] + ["paper_source"]
        df = df.assign(paper_source=[sources[k - 1] if k else "" for k in df["source"]])
    return df[cols].to_csv(index=False, float_format="%.6f")


def _fmt(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{decimals}f}"


def memory_text(n: float | None) -> str:
    from sr_bench.run.memory import size_text

    return "–" if n is None else size_text(int(n))


def with_ci(summary: pd.DataFrame, rows: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """``summary`` plus ``<metric>_ci95``: half the width of the 95% bootstrap interval of each mean over its images
    (``report.compare.half_width``), from the same error-free rows the means come from."""
    ok = rows[rows["error"].fillna("") == ""]
    out = summary.copy()
    groups = ok.groupby(KEYS, sort=False)
    for m in metrics:
        widths = groups[m].apply(half_width)
        out[f"{m}_ci95"] = [widths.get((r.model, r.dataset, r.scale_text), math.nan) for r in out.itertuples()]
    return out


def long_table(summary: pd.DataFrame, metrics: tuple[str, ...] | None = None, sources: list[str] | None = None
               ) -> tuple[list[str], list[list[str]], list[str]]:
    """The long layout as (header, string rows, notes): one row per (model, dataset, scale). With ``sources``
    (``report.paper.with_paper``), each metric that has published values gets ``paper`` and ``Δ`` (measured - paper)
    columns and the sources become the notes; ``<metric>_ci95`` columns (``with_ci``) add ``±`` half-widths.
    ``metrics`` default to every metric column of ``summary``."""
    from sr_bench.run.peaks import mfu_text, rate_text  # FLOP/s achieved, MFU where the GPU's peak is listed

    infos = [metric_info(m) for m in (metric_columns(summary) if metrics is None else metrics)]
    with_paper = [i for i in infos
                  if sources is not None and summary.get(f"paper_{i.name}", pd.Series(dtype=float)).notna().any()]
    head = ["model", "dataset", "scale", "n", "failed"]
    for i in infos:
        head.append(f"{i.name.upper()} {'↑' if i.higher_is_better else '↓'}")
        if i in with_paper:
            head += ["paper", "Δ"]
    # with_cost's columns: (head, text of a value or None)
    texts = {"params": ("params", str), "seconds": ("s/image", lambda v: _fmt(v, 3)),
             "gflops": ("GFLOPs", lambda v: _fmt(v, 1)), "flops_per_second": ("FLOP/s", rate_text),
             "mfu": ("MFU", mfu_text), "peak_memory": ("peak mem", memory_text)}
    cost = [c for c in texts if c in summary] if "params" in summary else []
    head += ["src"] * bool(with_paper) + [texts[c][0] for c in cost]
    rows = []
    incomplete = False
    for _, r in summary.iterrows():
        name = r["model"] + (" (untrained)" if r["untrained"] else "")
        n, total = int(r["n_images"]), int(r.get("n_total", r["n_images"]))
        cells = [name, r["dataset"], "x" + r["scale_text"], str(n) + (f" of {total}" if n < total else ""),
                 str(int(r.get("n_failed", 0)))]
        for i in infos:
            mark = INCOMPLETE_MARK if int(r.get(f"n_{i.name}", n)) < total else ""
            incomplete |= bool(mark)
            ci = r.get(f"{i.name}_ci95")
            value = r[i.name]
            cells.append(_fmt(value, i.decimals) + ("" if math.isnan(value) else mark)
                         + ("" if ci is None or math.isnan(ci) or math.isnan(value) else f"±{ci:.{i.decimals}f}"))
            if i in with_paper:
                paper = r[f"paper_{i.name}"]
                # the published value as the card prints it; the difference one digit finer than the metric
                text = r.get(f"paper_{i.name}_text") or (f"{paper:g}" if not math.isnan(paper) else "")
                delta = "–" if math.isnan(value - paper) else f"{value - paper:+.{i.decimals + 1}f}"
                cells += ["–" if math.isnan(paper) else text, delta]
        if with_paper:
            cells.append(f"[{int(r['source'])}]" if r["source"] else "–")
        rows.append(cells + [texts[c][1](None if pd.isna(r[c]) else r[c]) for c in cost])
    notes = []
    if incomplete:
        notes.append(f"{INCOMPLETE_MARK} mean over fewer images than the dataset has: n of N (failed: error rows, "
                     "listed in the run's 'error' column; a metric that failed alone on an image: its "
                     "'metric_errors' column)")
    if with_paper:
        notes += [f"[{k}] {s}" for k, s in enumerate(sources, 1)]
        if any(str(t).endswith(UNVERIFIED_MARK) for i in with_paper for t in summary.get(f"paper_{i.name}_text", [])):
            notes.append(UNVERIFIED_MEANING)
    elif sources is not None:
        notes.append("(no published values in the model cards match these models under this protocol)")
    return head, rows, notes


def to_markdown(summary: pd.DataFrame, metrics: tuple[str, ...] | None = None, sources: list[str] | None = None) -> str:
    """The long layout in Markdown (see ``long_table``); ``metrics`` default to every metric column of ``summary``."""
    return render_long(summary, metrics, sources, "markdown").rstrip("\n")


def render_long(summary: pd.DataFrame, metrics: tuple[str, ...] | None, sources: list[str] | None, fmt: str) -> str:
    """The long layout in any table format (``report.formats``); CSV keeps its numeric columns (``to_csv``)."""
    from sr_bench.report.formats import render_plain

    if fmt == "csv":
        return to_csv(summary, sources)
    head, rows, notes = long_table(summary, metrics, sources)
    return render_plain(head, rows, notes, fmt, numeric_from=3)


def present_metrics(rows: pd.DataFrame) -> tuple[str, ...]:
    """Metric columns (``metric_columns``) with at least one value (an unavailable LPIPS stays out of printed
    tables)."""
    return tuple(m for m in metric_columns(rows) if rows[m].notna().any())


def provenance_line(rows: pd.DataFrame) -> str:
    """Where the numbers of a table come from, in one line (protocols, devices, versions, checkpoints)."""
    protocols = sorted({f"{p} ({f})" for p, f in zip(rows["protocol"], rows["protocol_fingerprint"], strict=True)})
    devices = sorted(set(rows["device"]))
    versions = sorted(set(rows["package_versions"]))
    v = json.loads(versions[0]) if versions else {}
    ckpts = sorted({c[:12] for c in rows["checkpoint_sha256"] if c})
    parts = [f"protocol {', '.join(protocols)}", f"device {', '.join(devices)}",
             f"sr_bench {v.get('sr_bench', '?')}, torch {v.get('torch', '?')}"
             + (" (rows from several package sets)" if len(versions) > 1 else "")]
    if ckpts:
        parts.append(f"checkpoints sha256 {', '.join(ckpts)}")
        if "release" in rows:
            releases = sorted({r for rel in rows["release"].dropna() for r in rel.split("+") if r})
            if releases:
                parts.append(f"releases {', '.join(releases)}")
    parts += sorted({f"metric {k.removesuffix('_plugin')}: {v}" for w in set(rows["metric_weights"].dropna())
                     for k, v in json.loads(w or "{}").items() if k.endswith("_plugin")})
    if rows["untrained"].any():
        parts.append("UNTRAINED rows present (random weights)")
    return "; ".join(parts)
