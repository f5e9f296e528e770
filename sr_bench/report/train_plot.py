"""``srbench plot PATH.json`` for a training record: the loss curve, and the validation curve of each scale with
bicubic's value beside it (dashed, same colour) and the step ``PATH.best`` was taken at. Everything drawn is read
from ``PATH.json``, so the figure can be redrawn at any time, also while the run goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

from sr_bench.errors import UserError
from sr_bench.report.plot import pyplot

TRAIN_FORMAT = "sr_bench-train/"


def is_train_record(path: Path) -> bool:
    """Whether ``path`` is a ``srbench train`` PATH.json."""
    if not (path.is_file() and path.suffix == ".json"):
        return False
    try:
        return str(json.loads(path.read_text()).get("format", "")).startswith(TRAIN_FORMAT)
    except (ValueError, OSError, AttributeError):
        return False


def plot_training(record_path: Path, out: Path | None, metric: str | None = None, title: str | None = None):
    """Write the figure of the record at ``record_path`` to ``out`` (.png/.pdf/.svg; None: do not write); returns
    the matplotlib Figure (its lines carry the data)."""
    record = json.loads(Path(record_path).read_text())
    plt = pyplot(out)
    losses = record.get("losses") or []
    if not losses:
        raise UserError(f"{record_path} has no loss entries yet (written every --log-every steps)")
    val = record.get("validation")
    metric = metric or (val or {}).get("metric", "psnr")
    panels = 2 if val else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.0 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot([s for s, _ in losses], [v for _, v in losses], color="C0", linewidth=1)
    ax.set_xlabel("step")
    ax.set_ylabel(record.get("loss", "loss").split(" on ")[0].split(":")[0] + " (training)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if val:
        if metric not in val.get("metrics", [metric]):
            raise UserError(f"the validation measured {', '.join(val['metrics'])}, not {metric!r}")
        ax = axes[0][1]
        steps = [step for step, _ in val["curve"]]
        for i, scale in enumerate(val["scales"]):
            colour = f"C{i % 10}"
            ax.plot(steps, [means[scale][metric] for _, means in val["curve"]], marker="o", markersize=3,
                    color=colour, label=f"x{scale}")
            floor = (val.get("bicubic") or {}).get(scale)
            if floor:
                ax.axhline(floor[metric], color=colour, linestyle="--", linewidth=1, label=f"x{scale} bicubic")
        best = val.get("best")
        if best and best.get("metric") == metric:
            ax.axvline(best["step"], color="0.5", linestyle=":", linewidth=1, label=f"best (step {best['step']})")
        ax.set_xlabel("step")
        ax.set_ylabel(f"{metric.upper()}{' (dB)' if metric == 'psnr' else ''}, {val['dataset']}")
        ax.set_title(f"validation: {val['dataset']} ({val['images']} images), protocol {val['protocol']}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    name = record.get("model", "?")
    fig.suptitle(title or f"srbench train {name}: step {record.get('steps_done')} of {record.get('steps')}",
                 fontsize=10)
    fig.tight_layout()
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150)
    return fig
