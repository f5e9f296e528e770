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


def to_csv(summary: pd.DataFrame) -> str:
    """The columns ``model,dataset,scale,n_images,psnr,ssim,lpips`` (a metric never measured stays empty)."""
    cols = ["model", "dataset", "scale", "n_images", *METRIC_COLUMNS]
    df = summary.assign(scale=summary["scale_text"])[cols]
    return df.to_csv(index=False, float_format="%.6f")


def _fmt(value: float, decimals: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "inf"
    return f"{value:.{decimals}f}"


def to_markdown(summary: pd.DataFrame, metrics: tuple[str, ...] = METRIC_COLUMNS) -> str:
    infos = [metric_info(m) for m in metrics]
    head = ["model", "dataset", "scale", "n"] + [f"{i.name.upper()} {'↑' if i.higher_is_better else '↓'}" for i in infos]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (len(head) - 3)) + "|"]
    for _, r in summary.iterrows():
        name = r["model"] + (" (untrained)" if r["untrained"] else "")
        cells = [name, r["dataset"], "x" + r["scale_text"], str(int(r["n_images"]))]
        cells += [_fmt(r[i.name], i.decimals) for i in infos]
        lines.append("| " + " | ".join(cells) + " |")
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
    if rows["untrained"].any():
        parts.append("UNTRAINED rows present (random weights)")
    return "; ".join(parts)
