"""``srbench table``: which options go with which layout (checked here, not in the CLI), and the table text of a run
folder in one call. The card values come from the copy stored with the run (``report.run_cards``)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sr_bench.errors import UserError
from sr_bench.report.paper_table import LAYOUTS, RANKS, check_choice


def table_text(run_dir: Path, rows: pd.DataFrame, manifest: dict, layout: str = "long", fmt: str = "markdown",
               metrics: tuple[str, ...] | None = None, cells: str | None = None, reported: tuple[str, ...] = (),
               rank: str | None = None, ci: bool = False, cost: bool = False, order: str | None = None,
               max_columns: int | None = None, paper: bool = False) -> tuple[str, list[str]]:
    """The table of a run as text, and the notes to print beside it (a stored card that differs from the
    installed one). ``metrics`` None: psnr,ssim for the paper/scales layouts, every measured one for long;
    ``cells`` (paper layout): joined | split; ``rank``: comparable (default) | measured."""
    from sr_bench.report.formats import render
    from sr_bench.report.paper import load_run_plugins, with_paper_for_run
    from sr_bench.report.run_cards import RunCards
    from sr_bench.report.tables import present_metrics, render_long, summarize, with_ci

    _check(layout, paper, reported, rank, cells, order, max_columns)
    load_run_plugins(manifest)
    cards = RunCards(run_dir)
    if layout == "long":
        shown = metrics or present_metrics(rows)
        summary, sources = (with_paper_for_run(rows, manifest, shown, cards) if paper
                            else (summarize(rows, manifest), None))
        if ci:
            summary = with_ci(summary, rows, shown)
        if cost:
            from sr_bench.report.paper_table import with_cost

            summary = with_cost(summary, rows, manifest)
        return render_long(summary, shown, sources, fmt), cards.notes
    from sr_bench.report.paper_table import paper_layout, scales_layout

    shown = metrics or tuple(m for m in ("psnr", "ssim") if m in present_metrics(rows))
    common = dict(metrics=shown, reported=reported, rank=rank or "comparable", ci=ci, cost=cost,
                  order=order or "given", cards=cards)
    if layout == "paper":
        tables = [paper_layout(rows, manifest, joined=(cells or "joined") == "joined", **common)]
    else:
        tables = scales_layout(rows, manifest, max_columns=max_columns or 10, **common)
    return render(tables, fmt), cards.notes


def _check(layout, paper, reported, rank, cells, order, max_columns) -> None:
    """One-line errors for options that do not belong to the layout."""
    check_choice("--layout", layout, LAYOUTS)
    if rank is not None:
        check_choice("--rank", rank, RANKS)
    if layout == "long":
        for flag, given in (("--reported", reported), ("--rank", rank), ("--cells", cells), ("--order", order),
                            ("--max-columns", max_columns)):
            if given:
                raise UserError(f"{flag} needs --layout paper or scales (the long layout has one row per model, "
                                f"dataset and scale; use --paper there for the published values)")
        return
    if paper:
        raise UserError("--paper belongs to the long layout; with --layout paper/scales add published rows "
                        "with --reported NAMES")
    if layout == "paper" and max_columns:
        raise UserError("--max-columns belongs to --layout scales")
    if layout == "scales" and cells:
        raise UserError("--cells belongs to --layout paper (the scales layout has one metric per table)")
