"""Renderers of the paper-style tables (``report.paper_table.Table``) and of the long table into Markdown, LaTeX
(booktabs, no siunitx), HTML (classes ``best``/``second``/``reported``/``not-significant``) and wide CSV."""

from __future__ import annotations

import importlib

from sr_bench.errors import unknown

FORMATS = ("markdown", "latex", "html", "csv")


def _module(fmt: str):
    if fmt not in FORMATS:
        raise unknown("format", fmt, FORMATS)
    return importlib.import_module(f"sr_bench.report.formats.{fmt}")


def render(tables: list, fmt: str) -> str:
    """One or more ``Table``s (the scales layout makes one per dataset and metric) as one document."""
    return _module(fmt).render(tables)


def render_plain(head: list[str], rows: list[list[str]], notes: list[str], fmt: str, numeric_from: int = 0) -> str:
    """A table without groups or marks (the long layout): ``head`` and string ``rows``; columns from
    ``numeric_from`` on are right-aligned; ``notes`` go below it."""
    return _module(fmt).render_plain(head, rows, notes, numeric_from)
