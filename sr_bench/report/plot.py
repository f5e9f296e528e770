"""Scale curves: one panel per dataset, a metric's mean over images (``summarize``) against the scale, one line per
model; with ``paper`` the cards' published values (same protocol/variant) as open markers in the line's colour.
matplotlib is imported here only (the ``plot`` extra), so nothing else depends on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sr_bench.errors import UserError
from sr_bench.metrics import metric_info
from sr_bench.report.tables import present_metrics, summarize

FORMATS = (".png", ".pdf", ".svg")


def pyplot(out: Path | None, what: str = "plot file", needs: str = "plots need"):
    """matplotlib's pyplot (Agg), once ``out`` (None: no file) is known to end in one of ``FORMATS``."""
    if out is not None and Path(out).suffix.lower() not in FORMATS:
        raise UserError(f"{what} {str(out)!r} must end in {', '.join(FORMATS)}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(f"{needs} matplotlib: pip install 'sr_bench[plot]'") from None
    return plt


def plot_scale_curves(rows: pd.DataFrame, metric: str, out: Path | None, paper: pd.DataFrame | None = None,
                      title: str | None = None, manifest: dict | None = None):
    """Write the figure to ``out`` (.png/.pdf/.svg; None: do not write); returns the matplotlib Figure (its lines
    carry the data). Lines are labelled with the tables' method names (``MS-LapSRN (D5R8)``); a mean over fewer
    images than the dataset has gets an ``x`` over its point."""
    from sr_bench.report.paper_table import method_label

    out = Path(out) if out is not None else None
    plt = pyplot(out)
    info = metric_info(metric)
    if metric not in rows or rows[metric].isna().all():
        measured = present_metrics(rows)
        raise UserError(f"metric {metric!r} was not measured in this run; plot one of: {', '.join(measured) or 'none'}")
    s = summarize(rows, manifest)  # its order: models and datasets as run, scales ascending
    # a point's n_images: the images this metric's mean covers (< n_total: fewer than the dataset has)
    data = s[s[metric].notna()].assign(scale=s["scale"].astype(float), value=s[metric], n_images=s[f"n_{metric}"])
    configs = {m["name"]: m.get("config") or {} for m in (manifest or {}).get("models", [])}
    names = {m: method_label(m, configs.get(m, {})) for m in pd.unique(data["model"])}
    datasets = list(pd.unique(data["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    colours = {m: f"C{i % 10}" for i, m in enumerate(pd.unique(data["model"]))}
    for ax, dataset in zip(axes[0], datasets, strict=True):
        part = data[data["dataset"] == dataset]
        for model, line in part.groupby("model", sort=False):
            label = names[model] + (" (untrained)" if line["untrained"].any() else "")
            ax.plot(line["scale"], line["value"], marker="o" if len(line) < 12 else None, markersize=3,
                    color=colours[model], label=label)
            few = line[line["n_images"] < line["n_total"]]
            if len(few):
                ax.plot(few["scale"], few["value"], linestyle="none", marker="x", markersize=8, color=colours[model],
                        label=f"{names[model]}: fewer images than the dataset")
            if paper is not None:
                pub = paper[(paper["model"] == model) & (paper["dataset"] == dataset)].dropna(subset=["value"])
                if len(pub):
                    ax.plot(pub["scale"], pub["value"], linestyle="none", marker="o", markerfacecolor="none",
                            color=colours[model], label=f"{names[model]} (paper)")
        ax.set_title(f"{dataset} (n={int(part['n_total'].max())})")
        ax.set_xlabel("scale")
        unit = f" ({info.unit})" if info.unit else ""
        ax.set_ylabel(f"{info.name.upper()}{unit}, {'higher' if info.higher_is_better else 'lower'} is better")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    protocols = ", ".join(sorted(set(rows["protocol"])))
    fig.suptitle(title or f"{info.name.upper()} against scale, protocol {protocols}", fontsize=10)
    fig.tight_layout()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150)
    return fig


def paper_points(summary_with_paper: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Published points from ``report.paper.with_paper``'s output: model, dataset, scale (a float), value."""
    col = f"paper_{metric}"
    if col not in summary_with_paper:
        return pd.DataFrame(columns=["model", "dataset", "scale", "value"])
    s = summary_with_paper
    return pd.DataFrame({"model": s["model"], "dataset": s["dataset"], "scale": s["scale"].astype(float),
                         "value": s[col]})
