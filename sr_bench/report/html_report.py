"""A run as one self-contained HTML file (``srbench report --format html``; docs/paper-tables.md "HTML report"), from
the run folder's per-image rows, its run.json and the model cards, as the Markdown report."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from sr_bench.errors import UserError
from sr_bench.metrics import metric_info
from sr_bench.report.document import UNTRAINED, Fact, command_text, intro_fact, provenance_facts
from sr_bench.report.formats import render, render_plain
from sr_bench.report.formats.html import STYLE, escape
from sr_bench.report.paper import with_paper_for_run
from sr_bench.report.paper_table import BASELINE, paper_layout, scales_layout
from sr_bench.report.run_cards import RunCards
from sr_bench.report.tables import long_table, present_metrics
from sr_bench.store.atomic import atomic_write_text

PAPER_LAYOUT_MAX_SCALES = 6  # more scales than this read better as methods x scales tables (Meta-SR's layout)

PAGE_STYLE = """
body { font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #111; margin: 2em auto;
       max-width: 1200px; padding: 0 1.5em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ddd; }
code { font-size: 0.9em; background: #f4f4f4; padding: 0 0.2em; }
pre { background: #f4f4f4; padding: 0.6em; overflow-x: auto; }
.warning { background: #fff4e5; border-left: 4px solid #f0a020; padding: 0.5em 1em; }
figure { margin: 1em 0; } figure svg { max-width: 100%; height: auto; }
details summary { cursor: pointer; color: #333; }
""".strip()


def _fact_html(fact: Fact) -> str:
    return "".join(f"<{s}>{escape(t)}</{s}>" if s else escape(t) for t, s in fact)  # styles are tag names


def _curves(rows: pd.DataFrame, metrics: tuple[str, ...], summary_paper: pd.DataFrame, manifest: dict) -> list[str]:
    if rows["scale_text"].nunique() < 2:
        return []
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["<h2>Scale curves</h2>", "<p>(skipped: matplotlib is not installed; pip install 'sr_bench[plot]')</p>"]
    from sr_bench.report.plot import paper_points, plot_scale_curves, pyplot

    plt, out = pyplot(None), ["<h2>Scale curves</h2>"]
    for m in metrics:
        points = paper_points(summary_paper, m)
        caption = f"{metric_info(m).name.upper()} against scale"
        if points["value"].notna().any():  # say what open markers mean only where some are drawn
            caption += "; open markers: published values (model cards, same protocol)"
        if (summary_paper["n_images"] < summary_paper["n_total"]).any():
            caption += "; × on a point: a mean over fewer images than the dataset has"
        fig = plot_scale_curves(rows, m, None, paper=points, title=None, manifest=manifest)
        buf = io.StringIO()
        fig.savefig(buf, format="svg")  # text as paths: the page needs no font
        plt.close(fig)
        svg = buf.getvalue()
        out += [f"<figure>{svg[svg.index('<svg'):]}<figcaption>{escape(caption)}</figcaption></figure>"]
    return out


def _against_baseline(rows: pd.DataFrame, run_id: str, metrics: tuple[str, ...]) -> list[str]:
    from sr_bench.report.compare import ALL_SCALES, Side, compare_table, pair_rows, stat_texts

    models = list(pd.unique(rows["model"]))
    if BASELINE not in models or len(models) < 2:
        return []
    out = ["<h2>Against bicubic</h2>",
           "<p>Per model B against bicubic (A), paired on the same images: mean B − A with its 95% paired-bootstrap "
           "interval (10,000 resamples, seed 0), B's wins/ties/losses, two-sided Wilcoxon signed-rank p "
           "(as <code>srbench compare</code>).</p>"]
    for model in models:
        if model == BASELINE:
            continue
        untrained = bool(rows.loc[rows["model"] == model, "untrained"].any())
        pairing = pair_rows(rows, rows, Side(BASELINE, run_id, BASELINE), Side(model, run_id, model, untrained),
                            metrics)
        table = compare_table(pairing)
        head = ["dataset", "scale", "metric", "n", "bicubic", model, "B − A", "95% CI", "W/T/L", "p"]
        lines = [[r["dataset"], "all" if r["scale"] == ALL_SCALES else f"×{r['scale']}", r["metric"].upper(),
                  *stat_texts(r, metric_info(r["metric"]).decimals)] for _, r in table.iterrows()]
        label = model + (" (untrained)" if untrained else "")
        out.append(f"<h3>{escape(label)} − bicubic</h3>")
        out.append(render_plain(head, lines, [], "html", numeric_from=3))
    return out


def _errors(rows: pd.DataFrame) -> list[str]:
    bad = rows[rows["error"].fillna("") != ""]
    if bad.empty:
        return []
    body = [[r.model, r.dataset, r.image, f"×{r.scale_text}", str(r.error)] for r in bad.itertuples()]
    return ["<h2>Rows with errors</h2>",
            render_plain(["model", "dataset", "image", "scale", "error"], body, [], "html", numeric_from=5)]


def _provenance(manifest: dict, rows: pd.DataFrame) -> list[str]:
    out = ["<h2>Provenance</h2>"]
    command = command_text(manifest)
    if command:
        out.append(f"<p>Command:</p><pre>{escape(command)}</pre>")
    out.append("<ul>" + "".join(f"<li>{_fact_html(f)}</li>" for f in provenance_facts(manifest, rows)) + "</ul>")
    rules = manifest.get("protocol", {}).get("rules") or {}
    if rules:
        out.append("<details><summary>Protocol rules</summary>"
                   + render_plain(["rule", "value"], [[k, str(v)] for k, v in rules.items()], [], "html",
                                  numeric_from=2) + "</details>")
    return out


def html_report(run_dir: Path, rows: pd.DataFrame, manifest: dict, reported: tuple[str, ...] = (),
                plots: bool = True) -> str:
    """The whole page as a string (see module doc)."""
    metrics = present_metrics(rows)
    table_metrics = tuple(m for m in ("psnr", "ssim") if m in metrics) or metrics
    run_id = manifest.get("run_id", run_dir.name)
    body = [f"<h1>sr_bench run {escape(run_id)}</h1>", f"<p>{_fact_html(intro_fact(run_dir, rows))}</p>"]
    if rows["untrained"].any():
        body.append(f'<p class="warning">{_fact_html(UNTRAINED)}</p>')
    body.append("<h2>Results</h2>")
    cards = RunCards(run_dir)
    if rows["scale_text"].nunique() <= PAPER_LAYOUT_MAX_SCALES:
        tables = [paper_layout(rows, manifest, metrics=table_metrics, reported=reported, cards=cards)]
    else:
        tables = scales_layout(rows, manifest, metrics=table_metrics, reported=reported, cards=cards)
    body.append(render(tables, "html"))
    summary, sources = with_paper_for_run(rows, manifest, metrics, cards)
    body += [f'<p class="warning">{escape(note)}</p>' for note in cards.notes]
    if sources:
        head, lines, notes = long_table(summary, metrics, sources)
        body += ["<details><summary>Measured next to the published values (model cards, same protocol)</summary>",
                 render_plain(head, lines, notes, "html", numeric_from=3), "</details>"]
    if plots:
        body += _curves(rows, metrics, summary, manifest)
    body += _against_baseline(rows, run_id, metrics)
    body += _errors(rows)
    body += _provenance(manifest, rows)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>sr_bench run {escape(run_id)}</title>\n<style>\n{PAGE_STYLE}\n{STYLE}\n</style>\n</head>\n"
            "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def write_html_report(run_dir: Path, rows: pd.DataFrame, manifest: dict, out: Path, reported: tuple[str, ...] = (),
                      plots: bool = True) -> Path:
    """Write ``out`` when it names an .html/.htm file, else ``out/report.html`` (a folder); returns the path."""
    if not len(rows):
        raise UserError(f"run {run_dir.name} has no rows to report")
    out = Path(out)
    path = out / "report.html" if out.is_dir() or out.suffix.lower() not in (".html", ".htm") else out
    atomic_write_text(path, html_report(run_dir, rows, manifest, reported, plots))
    return path
