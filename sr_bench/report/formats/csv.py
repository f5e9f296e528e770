"""Wide CSV (marks and ``kind`` as docs/paper-tables.md lists them): one line per (block, method), per data column
its value at full precision (empty when missing), its mark and, with ``--ci``, its half-width; a reported row's
sources spelled out in ``source``. The scales layout has one line per (dataset, metric, method), every scale on it."""

from __future__ import annotations

import csv
import io
import math

from sr_bench.report.paper_table import BEST


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.10g}"


def _mark(cell) -> str:
    mark = "best-not-significant" if cell.mark == BEST and cell.not_significant else cell.mark
    flags = [f for f, on in (("incomplete", cell.incomplete), ("unverified", not cell.verified)) if on]
    return "+".join(x for x in (mark, *flags) if x)


def _cells(cell, ci: bool) -> list[str]:
    """Value, mark and (``ci``) half-width; empty for a cell the row does not have."""
    if cell is None:
        return ["", ""] + [""] * ci
    return [_num(cell.value), _mark(cell)] + [_num(cell.half_width)] * ci


def _csv(lines: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(lines)
    return buf.getvalue()


def render(tables: list) -> str:
    out = []
    header_written = False  # the scales layout's tables share one header
    for table in tables:
        ci = any(c.half_width is not None for b in table.blocks for r in b.rows for c in r.cells)
        if table.grouped:
            ids = ["scale"]
            keys = [f"{c.dataset}_{c.metric}" for c in table.blocks[0].columns]
            lines = [([block.columns[0].scale_text], row, row.cells, row.notes)
                     for block in table.blocks for row in [*block.rows, *block.others]]
        else:
            ids = ["dataset", "metric"]
            columns = [c for b in table.blocks for c in b.columns]
            keys = [f"x{c.scale_text}" for c in columns]
            merged: dict[tuple, tuple] = {}  # a reported row may be absent from a block it has no value in
            for block in table.blocks:
                for row in [*block.rows, *block.others]:
                    key = (row.method.key, row.method.reported, row.method.other_protocol)
                    cells, notes = merged.setdefault(key, (row, {}, set()))[1:]
                    cells.update({c.scale_text: cell for c, cell in zip(block.columns, row.cells, strict=True)})
                    notes.update(row.notes)
            lines = [([columns[0].dataset, columns[0].metric], row, [cells.get(c.scale_text) for c in columns],
                      sorted(notes)) for row, cells, notes in merged.values()]
        if table.grouped or not header_written:
            cost = [h.lower().replace("/", "_per_").replace(" ", "_") for h in table.cost_heads]
            out.append([*ids, "method", "model", "kind", "source",
                        *(x for k in keys for x in [k, f"{k}_mark"] + [f"{k}_ci95"] * ci), *cost])
            header_written |= not table.grouped
        for first, row, cells, notes in lines:
            kind = ("measured" if not row.method.reported else
                    "reported-other-protocol" if row.method.other_protocol else "reported")
            source = " | ".join(table.footnotes[n - 1] for n in notes)
            out.append([*first, row.method.label, row.method.key, kind, source,
                        *(x for c in cells for x in _cells(c, ci)), *row.cost])
    return _csv(out)


def render_plain(head, rows, notes, numeric_from=0) -> str:
    return _csv([head, *rows])
