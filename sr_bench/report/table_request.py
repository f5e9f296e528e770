"""``srbench table``: which options go with which layout (checked here, not in the CLI), and the table text of a run
folder in one call. The card values come from the copy stored with the run (``report.run_cards``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sr_bench.errors import UserError
from sr_bench.report.paper_table import LAYOUTS, RANKS, check_choice


@dataclass(frozen=True)
class TableRequest:
    layout: str = "long"
    fmt: str = "markdown"
    metrics: tuple[str, ...] | None = None  # None: paper/scales psnr,ssim; long every measured one
    cells: str | None = None  # paper layout: joined | split
    reported: tuple[str, ...] = ()
    rank: str | None = None  # comparable (default) | measured
    ci: bool = False
    cost: bool = False
    order: str | None = None
    max_columns: int | None = None
    paper: bool = False

    def check(self) -> None:
        """One-line errors for options that do not belong to the layout."""
        check_choice("--layout", self.layout, LAYOUTS)
        if self.rank is not None:
            check_choice("--rank", self.rank, RANKS)
        if self.layout == "long":
            for flag, given in (("--reported", self.reported), ("--rank", self.rank), ("--cells", self.cells),
                                ("--order", self.order), ("--max-columns", self.max_columns)):
                if given:
                    raise UserError(f"{flag} needs --layout paper or scales (the long layout has one row per model, "
                                    f"dataset and scale; use --paper there for the published values)")
            return
        if self.paper:
            raise UserError("--paper belongs to the long layout; with --layout paper/scales add published rows "
                            "with --reported NAMES")
        if self.layout == "paper" and self.max_columns:
            raise UserError("--max-columns belongs to --layout scales")
        if self.layout == "scales" and self.cells:
            raise UserError("--cells belongs to --layout paper (the scales layout has one metric per table)")


def table_text(run_dir: Path, rows: pd.DataFrame, manifest: dict, req: TableRequest) -> tuple[str, list[str]]:
    """The table of a run as text, and the notes to print beside it (a stored card that differs from the
    installed one)."""
    from sr_bench.report.formats import render
    from sr_bench.report.paper import load_run_plugins, with_paper_for_run
    from sr_bench.report.run_cards import RunCards
    from sr_bench.report.tables import present_metrics, render_long, summarize, with_ci

    req.check()
    load_run_plugins(manifest)
    cards = RunCards(run_dir)
    if req.layout == "long":
        shown = req.metrics or present_metrics(rows)
        summary, sources = summarize(rows, manifest), None
        if req.paper:
            summary, sources = with_paper_for_run(summary, rows, manifest, shown, cards)
        if req.ci:
            summary = with_ci(summary, rows, shown)
        if req.cost:
            from sr_bench.report.paper_table import with_cost

            summary = with_cost(summary, rows, manifest)
        return render_long(summary, shown, sources, req.fmt), cards.notes
    from sr_bench.report.paper_table import paper_layout, scales_layout

    shown = req.metrics or tuple(m for m in ("psnr", "ssim") if m in present_metrics(rows))
    common = dict(metrics=shown, reported=req.reported, rank=req.rank or "comparable", ci=req.ci, cost=req.cost,
                  order=req.order or "given", cards=cards)
    if req.layout == "paper":
        tables = [paper_layout(rows, manifest, joined=(req.cells or "joined") == "joined", **common)]
    else:
        tables = scales_layout(rows, manifest, max_columns=req.max_columns or 10, **common)
    return render(tables, req.fmt), cards.notes
