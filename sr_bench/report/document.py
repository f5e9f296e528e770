"""A run as one Markdown document (``srbench report``): what was asked, under which rules, the means next to the
papers', scale curves, and every row that failed — the page a reader needs to trust or reproduce the numbers.

Everything is derived from the run folder: ``run.json`` for provenance, the per-image rows for every number.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from sr_bench.report.paper import with_paper_for_run
from sr_bench.report.tables import present_metrics, summarize, to_csv, to_markdown


def _provenance(manifest: dict, rows: pd.DataFrame) -> list[str]:
    protocol = manifest.get("protocol", {})
    lines = ["## Provenance", ""]
    command = manifest.get("command") or []
    if command:
        lines += ["Command:", "", "```bash", " ".join(shlex.quote(c) for c in ["srbench", *command[1:]]), "```", ""]
    lines.append(f"- run `{manifest.get('run_id', '?')}`, created {manifest.get('created', '?')}"
                 + (f", resumed {', '.join(manifest['resumed'])}" if manifest.get("resumed") else ""))
    lines.append(f"- protocol `{protocol.get('name', '?')}`, fingerprint `{protocol.get('fingerprint', '?')}`")
    devices = sorted(set(rows["device"]))
    lines.append(f"- device(s): {', '.join(f'`{d}`' for d in devices)}")
    versions = manifest.get("package_versions", {})
    lines.append("- packages: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for m in manifest.get("models", []):
        ckpt = f"`{m['checkpoint']}` sha256 `{m['checkpoint_sha256']}`" if m.get("checkpoint_sha256") else "no checkpoint"
        if m.get("release"):
            ckpt += f" (release: {m['release']})"
        flag = " — **untrained (random weights)**" if m.get("untrained") else ""
        config = ", ".join(f"{k}={v}" for k, v in (m.get("config") or {}).items())
        lines.append(f"- model `{m['name']}`: {ckpt}" + (f"; {config}" if config else "") + flag)
    for name, value in (manifest.get("metric_weights") or {}).items():
        lines.append(f"- metric weights {name}: `{value}`")
    for note in manifest.get("notes", []):
        lines.append(f"- note: {note}")
    rules = protocol.get("rules") or {}
    if rules:
        lines += ["", "<details><summary>Protocol rules</summary>", "", "| rule | value |", "|---|---|"]
        lines += [f"| {k} | {str(v).replace('|', '/')} |" for k, v in rules.items()]
        lines += ["", "</details>"]
    return lines


def write_report(run_dir: Path, rows: pd.DataFrame, manifest: dict, out: Path, plots: bool = True) -> Path:
    """Write ``out/report.md`` (+ ``summary.csv`` and one ``<metric>_vs_scale.png`` per metric when the run has
    more than one scale and matplotlib is installed); returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = present_metrics(rows)
    summary, sources = with_paper_for_run(summarize(rows), rows, manifest, metrics)
    (out / "summary.csv").write_text(to_csv(summary, sources))

    ok = rows["error"].fillna("") == ""
    models = list(pd.unique(rows["model"]))
    lines = [f"# sr_bench run {manifest.get('run_id', run_dir.name)}", "",
             f"{len(models)} model(s) ({', '.join(f'`{m}`' for m in models)}), "
             f"{rows['dataset'].nunique()} dataset(s), {rows['scale_text'].nunique()} scale(s); {int(ok.sum())} "
             f"measured rows, {int((~ok).sum())} error rows. Means are over images; every number comes from "
             f"the per-image rows in `{run_dir}/rows/`.", ""]
    if rows["untrained"].any():
        lines += ["> **Untrained rows present**: some models ran with random weights (smoke/profiling run); "
                  "their numbers mean nothing about the architecture.", ""]
    lines += ["## Results", "", to_markdown(summary, metrics, sources), "",
              "`summary.csv` holds the same table (with the published values and their sources).", ""]
    strategies = rows[ok & (rows["strategy"] != "native")]
    if len(strategies):
        used = strategies.groupby("model")["strategy"].unique()
        lines += ["Scales a model has no network for ran through a named strategy: "
                  + "; ".join(f"`{m}`: {', '.join(s)}" for m, s in used.items()) + ".", ""]
    if plots and rows["scale_text"].nunique() > 1:
        lines += _plots(rows, metrics, summary, out)
    if (~ok).any():
        bad = rows[~ok][["model", "dataset", "image", "scale_text", "error"]]
        lines += ["## Rows with errors", "", "| model | dataset | image | scale | error |", "|---|---|---|---|---|"]
        lines += [f"| {r.model} | {r.dataset} | {r.image} | x{r.scale_text} | {str(r.error).replace('|', '/')} |"
                  for r in bad.itertuples()]
        lines.append("")
    lines += _provenance(manifest, rows)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plots(rows: pd.DataFrame, metrics, summary: pd.DataFrame, out: Path) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["(Scale curves skipped: matplotlib is not installed; pip install 'sr_bench[plot]'.)", ""]
    from sr_bench.report.plot import paper_points, plot_scale_curves

    lines = ["## Scale curves", ""]
    for metric in metrics:
        name = f"{metric}_vs_scale.png"
        fig = plot_scale_curves(rows, metric, out / name, paper=paper_points(summary, metric))
        import matplotlib.pyplot as plt

        plt.close(fig)
        lines += [f"![{metric} against scale]({name})", ""]
    return lines
