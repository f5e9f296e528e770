"""Summary tables, derived from per-image rows only. Formatting reads each metric's declared metadata."""

from __future__ import annotations

import math

import pandas as pd

from sr_bench.metrics import metric_info
from sr_bench.store.schema import METRIC_COLUMNS

KEYS = ["model", "dataset", "scale_text"]


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean of per-image values per (model, dataset, scale) for every metric column (NaN where never measured);
    ``n_images`` counts the measured (error-free) rows."""
    ok = rows[rows["error"].fillna("") == ""]
    order = {k: {v: i for i, v in enumerate(pd.unique(rows[k]))} for k in ("model", "dataset")}
    grouped = ok.groupby(KEYS, sort=False)
    out = grouped[list(METRIC_COLUMNS)].mean()
    out.insert(0, "n_images", grouped.size())
    out["scale"] = grouped["scale"].first()
    out["untrained"] = grouped["untrained"].any()
    out = out.reset_index()
    out["_m"] = out["model"].map(order["model"])
    out["_d"] = out["dataset"].map(order["dataset"])
    out = out.sort_values(["_m", "_d", "scale"]).drop(columns=["_m", "_d"]).reset_index(drop=True)
    return out


def to_csv(summary: pd.DataFrame, sources: list[str] | None = None) -> str:
    """The columns ``model,dataset,scale,n_images,psnr,ssim,lpips`` (a metric never measured stays empty); with
    ``sources`` also ``paper_<metric>`` for every metric and ``paper_source`` (the card's source text)."""
    cols = ["model", "dataset", "scale", "n_images", *METRIC_COLUMNS]
    df = summary.assign(scale=summary["scale_text"])
    if sources is not None:
        cols += [f"paper_{m}" for m in METRIC_COLUMNS if f"paper_{m}" in df] + ["paper_source"]
        df = df.assign(paper_source=[sources[k - 1] if k else "" for k in df["source"]])
    return df[cols].to_csv(index=False, float_format="%.6f")


def _fmt(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{decimals}f}"


def _signed(value: float, decimals: int) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:+.{decimals}f}"


def to_markdown(summary: pd.DataFrame, metrics: tuple[str, ...] = METRIC_COLUMNS, sources: list[str] | None = None) -> str:
    """One row per (model, dataset, scale). With ``sources`` (``report.paper.with_paper``), each metric that has
    published values gets ``paper`` and ``Δ`` (measured - paper) columns and the sources become footnotes."""
    infos = [metric_info(m) for m in metrics]
    with_paper = [i for i in infos if sources is not None and summary.get(f"paper_{i.name}", pd.Series(dtype=float)).notna().any()]
    head = ["model", "dataset", "scale", "n"]
    for i in infos:
        head.append(f"{i.name.upper()} {'↑' if i.higher_is_better else '↓'}")
        if i in with_paper:
            head += ["paper", "Δ"]
    if with_paper:
        head.append("src")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for _, r in summary.iterrows():
        name = r["model"] + (" (untrained)" if r["untrained"] else "")
        cells = [name, r["dataset"], "x" + r["scale_text"], str(int(r["n_images"]))]
        for i in infos:
            cells.append(_fmt(r[i.name], i.decimals))
            if i in with_paper:
                paper = r[f"paper_{i.name}"]
                # the published value as printed (its own digits); the difference one digit finer than the metric
                cells += ["–" if math.isnan(paper) else f"{paper:g}", _signed(r[i.name] - paper, i.decimals + 1)]
        if with_paper:
            cells.append(f"[{int(r['source'])}]" if r["source"] else "–")
        lines.append("| " + " | ".join(cells) + " |")
    if with_paper:
        lines.append("")
        lines += [f"[{k}] {s}" for k, s in enumerate(sources, 1)]
    elif sources is not None:
        lines += ["", "(no published values in the model cards match these models under this protocol)"]
    return "\n".join(lines)


def present_metrics(rows: pd.DataFrame) -> tuple[str, ...]:
    """Metric columns with at least one value (an unavailable LPIPS stays out of printed tables)."""
    return tuple(m for m in METRIC_COLUMNS if rows[m].notna().any())


def provenance_line(rows: pd.DataFrame) -> str:
    """Where the numbers of a table come from, in one line (protocols, devices, versions, checkpoints)."""
    import json

    protocols = sorted({f"{p} ({f})" for p, f in zip(rows["protocol"], rows["protocol_fingerprint"])})
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
    if rows["untrained"].any():
        parts.append("UNTRAINED rows present (random weights)")
    return "; ".join(parts)
