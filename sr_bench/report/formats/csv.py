"""Wide CSV: one line per (block, method); per data column its value (full precision, empty when missing), its mark
(``best``, ``second``, ``best-not-significant``, then ``incomplete`` / ``unverified`` joined by ``+``, or empty) and,
with ``--ci``, its 95% half-width; ``kind`` is ``measured``, ``reported`` or ``reported-other-protocol``; a reported
row's sources are spelled out in ``source``. The scales layout has one line per (dataset, metric, method), every
scale in one line."""

from __future__ import annotations

import csv
import io
import math

from sr_bench.report.paper_table import BEST


def _num(v) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.10g}"


def _mark(cell) -> str:
    mark = "best-not-significant" if cell.mark == BEST and cell.not_significant else cell.mark
    return "+".join(x for x in (mark, _flags(cell)) if x)


def _cost_names(table) -> list[str]:
    return [h.lower().replace("/", "_per_").replace(" ", "_") for h in table.cost_heads]


def _kind(row) -> list[str]:
    if not row.method.reported:
        return ["measured"]
    return ["reported-other-protocol" if row.method.other_protocol else "reported"]


def _flags(cell) -> str:
    """``incomplete`` (a mean over fewer images than the dataset has), ``unverified`` (a card value not checked)."""
    return "+".join(f for f, on in (("incomplete", cell.incomplete), ("unverified", not cell.verified)) if on)


def render(tables: list) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    header_written = False
    for table in tables:
        ci = any(c.half_width is not None for b in table.blocks for r in b.rows for c in r.cells)
        sources = {k: text for k, text in enumerate(table.footnotes, 1)}
        if table.grouped:
            head = ["scale", "method", "model", "kind", "source"]
            for c in table.blocks[0].columns:
                key = f"{c.dataset}_{c.metric}"
                head += [key, f"{key}_mark"] + ([f"{key}_ci95"] if ci else [])
            w.writerow(head + _cost_names(table))
            for block in table.blocks:
                for row in [*block.rows, *block.others]:
                    line = [block.columns[0].scale_text, row.method.label, row.method.key, *_kind(row),
                            " | ".join(sources[n] for n in row.notes)]
                    for c in row.cells:
                        line += [_num(c.value), _mark(c)] + ([_num(c.half_width)] if ci else [])
                    w.writerow(line + list(row.cost))
        else:
            columns = [c for b in table.blocks for c in b.columns]
            if not header_written:
                head = ["dataset", "metric", "method", "model", "kind", "source"]
                for c in columns:
                    head += [f"x{c.scale_text}", f"x{c.scale_text}_mark"] + ([f"x{c.scale_text}_ci95"] if ci else [])
                w.writerow(head + _cost_names(table))
                header_written = True
            merged: dict[tuple, tuple] = {}  # a reported row may be absent from a block it has no value in
            for block in table.blocks:
                for row in [*block.rows, *block.others]:
                    key = (row.method.key, row.method.reported, row.method.other_protocol)
                    cells, notes = merged.setdefault(key, (row, {}, set()))[1:]
                    cells.update({c.scale_text: cell
                                  for c, cell in zip(block.columns, row.cells, strict=True)})
                    notes.update(row.notes)
            for row, cells, notes in merged.values():
                line = [columns[0].dataset, columns[0].metric, row.method.label, row.method.key, *_kind(row),
                        " | ".join(sources[n] for n in sorted(notes))]
                for c in columns:
                    cell = cells.get(c.scale_text)
                    line += ([_num(cell.value), _mark(cell)] if cell else ["", ""])
                    line += ([_num(cell.half_width) if cell else ""] if ci else [])
                w.writerow(line + list(row.cost))
    return buf.getvalue()


def render_plain(head, rows, notes, caption="", numeric_from=0) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    w.writerows(rows)
    return buf.getvalue()
