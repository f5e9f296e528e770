"""A run as one Markdown document (``srbench report``): what was asked, under which rules, the means next to the
papers', scale curves and every row that failed, all of it from the run folder (run.json for provenance, the per-image
rows for every number)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pandas as pd

from sr_bench.report.formats import render_plain
from sr_bench.report.paper import with_paper_for_run
from sr_bench.report.run_cards import RunCards
from sr_bench.report.tables import present_metrics, to_csv, to_markdown

# A fact is a list of spans: (text, style) with style "" (plain), "code" or "strong"; each document renders them.
Fact = list[tuple[str, str]]
UNTRAINED: Fact = [("Untrained rows present", "strong"),
                   (": some models ran with random weights (smoke/profiling run); their numbers mean nothing about "
                    "the architecture.", "")]


def _codes(texts) -> Fact:
    """``texts`` as code spans, joined by commas."""
    return [span for i, t in enumerate(texts) for span in [(", ", "")] * bool(i) + [(t, "code")]]


def intro_fact(run_dir: Path, rows: pd.DataFrame) -> Fact:
    """What the run holds and where its numbers come from, in one sentence."""
    ok = rows["error"].fillna("") == ""
    models = list(pd.unique(rows["model"]))
    return [(f"{len(models)} model(s) (", ""), *_codes(models),
            (f"), {rows['dataset'].nunique()} dataset(s), {rows['scale_text'].nunique()} scale(s); {int(ok.sum())} "
             f"measured rows, {int((~ok).sum())} error rows. Means are over images; every number comes from the "
             "per-image rows in ", ""), (f"{run_dir}/rows/", "code"), (".", "")]


def provenance_facts(manifest: dict, rows: pd.DataFrame) -> list[Fact]:
    """Where the run's numbers come from, one fact a line: run, protocol + fingerprint, devices, packages, each
    model's checkpoint sha256 and options, metric weights, notes."""
    protocol = manifest.get("protocol", {})
    facts: list[Fact] = [
        [("run ", ""), (manifest.get("run_id", "?"), "code"), (f", created {manifest.get('created', '?')}", "")]
        + ([(f", resumed {', '.join(manifest['resumed'])}", "")] if manifest.get("resumed") else []),
        [("protocol ", ""), (protocol.get("name", "?"), "code"), (", fingerprint ", ""),
         (protocol.get("fingerprint", "?"), "code")],
        [("device(s): ", ""), *_codes(sorted(set(rows["device"])))],
        [("packages: " + ", ".join(f"{k} {v}" for k, v in manifest.get("package_versions", {}).items()), "")],
    ]
    for m in manifest.get("models", []):
        fact: Fact = [("model ", ""), (m["name"], "code"), (": ", "")]
        if m.get("checkpoint_sha256"):
            fact += [(str(m["checkpoint"]), "code"), (" sha256 ", ""), (m["checkpoint_sha256"], "code")]
        else:
            fact.append(("no checkpoint", ""))
        if m.get("release"):
            fact.append((f" (release: {m['release']})", ""))
        config = ", ".join(f"{k}={v}" for k, v in (m.get("config") or {}).items())
        fact += [(f"; {config}", "")] if config else []
        fact += [(" — ", ""), ("untrained (random weights)", "strong")] if m.get("untrained") else []
        facts.append(fact)
    for name, info in (manifest.get("metric_info") or {}).items():
        unit = f", unit {info['unit']}" if info.get("unit") else ""
        better = "higher" if info.get("higher_is_better") else "lower"
        facts.append([("metric ", ""), (name, "code"),
                      (f": {better} is better, range [{info.get('lower')}, {info.get('upper')}]{unit}, view ", ""),
                      (str(info.get("view")), "code"), (f"; {info.get('source')}", "")])
    for name, value in (manifest.get("metric_weights") or {}).items():
        if not name.endswith("_plugin"):  # named with the metric above
            facts.append([(f"metric weights {name}: ", ""), (str(value), "code")])
    for note in manifest.get("notes", []):
        facts.append([(f"note: {note}", "")])
    return facts


def command_text(manifest: dict) -> str:
    command = manifest.get("command") or []
    return " ".join(shlex.quote(c) for c in ["srbench", *command[1:]]) if command else ""


def _markdown_fact(fact: Fact) -> str:
    wrap = {"": "{}", "code": "`{}`", "strong": "**{}**"}
    return "".join(wrap[style].format(text) for text, style in fact)


def _provenance(manifest: dict, rows: pd.DataFrame) -> list[str]:
    lines = ["## Provenance", ""]
    command = command_text(manifest)
    if command:
        lines += ["Command:", "", "```bash", command, "```", ""]
    lines += [f"- {_markdown_fact(f)}" for f in provenance_facts(manifest, rows)]
    rules = manifest.get("protocol", {}).get("rules") or {}
    if rules:
        table = render_plain(["rule", "value"], [[k, str(v).replace("|", "/")] for k, v in rules.items()], [],
                             "markdown", numeric_from=2)
        lines += ["", "<details><summary>Protocol rules</summary>", "", table, "</details>"]
    return lines


def write_report(run_dir: Path, rows: pd.DataFrame, manifest: dict, out: Path, plots: bool = True) -> Path:
    """Write ``out/report.md`` (+ ``summary.csv`` and one ``<metric>_vs_scale.png`` per metric when the run has
    more than one scale and matplotlib is installed); returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    metrics = present_metrics(rows)
    cards = RunCards(run_dir)
    summary, sources = with_paper_for_run(rows, manifest, metrics, cards)
    (out / "summary.csv").write_text(to_csv(summary, sources))

    ok = rows["error"].fillna("") == ""
    title = f"# sr_bench run {manifest.get('run_id', run_dir.name)}"
    lines = [title, "", _markdown_fact(intro_fact(run_dir, rows)), ""]
    if rows["untrained"].any():
        lines += [f"> {_markdown_fact(UNTRAINED)}", ""]
    lines += ["## Results", "", to_markdown(summary, metrics, sources), "", *[f"> note: {n}\n" for n in cards.notes],
              "`summary.csv` holds the same table (with the published values and their sources).", ""]
    strategies = rows[ok & (rows["strategy"] != "native")]
    if len(strategies):
        used = strategies.groupby("model")["strategy"].unique()
        lines += ["Scales a model has no network for ran through a named strategy: "
                  + "; ".join(f"`{m}`: {', '.join(s)}" for m, s in used.items()) + ".", ""]
    if plots and rows["scale_text"].nunique() > 1:
        lines += _plots(rows, metrics, summary, out, manifest)
    if (~ok).any():
        bad = [[r.model, r.dataset, r.image, f"x{r.scale_text}", str(r.error).replace("|", "/")]
               for r in rows[~ok].itertuples()]
        lines += ["## Rows with errors", "", render_plain(["model", "dataset", "image", "scale", "error"], bad, [],
                                                          "markdown", numeric_from=5)]
    lines += _provenance(manifest, rows)
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _plots(rows: pd.DataFrame, metrics, summary: pd.DataFrame, out: Path, manifest: dict) -> list[str]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return ["(Scale curves skipped: matplotlib is not installed; pip install 'sr_bench[plot]'.)", ""]
    from sr_bench.report.plot import paper_points, plot_scale_curves, pyplot

    plt, lines = pyplot(None), ["## Scale curves", ""]
    for metric in metrics:
        name = f"{metric}_vs_scale.png"
        fig = plot_scale_curves(rows, metric, out / name, paper=paper_points(summary, metric), manifest=manifest)
        plt.close(fig)
        lines += [f"![{metric} against scale]({name})", ""]
    return lines
