"""HTML: a ``<table class="srbench-table">`` fragment with the same marks as LaTeX (no colour says more than they
do) and the classes docs/paper-tables.md lists; ``STYLE`` is the style sheet the HTML report embeds."""

from __future__ import annotations

from html import escape as _esc

from sr_bench.report.formats.cells import Markup, groups, note_lines, row_cells, sub_heads


def escape(text: str) -> str:
    return _esc(text, quote=True)


MARKUP = Markup(
    escape=escape,
    best=lambda s: f'<strong class="best">{s}</strong>',
    second=lambda s: f'<u class="second">{s}</u>',
    not_significant='<sup class="not-significant">‡</sup>',
    reported=lambda label, notes: f'{label}<sup class="note">†{",".join(str(n) for n in notes)}</sup>',
)

STYLE = """
table.srbench-table { border-collapse: collapse; font: 14px/1.35 -apple-system, "Segoe UI", Helvetica, Arial, \
sans-serif; margin: 0.5em 0 1.5em; }
table.srbench-table caption { caption-side: top; text-align: left; padding: 0.3em 0; color: #333; }
table.srbench-table th, table.srbench-table td { padding: 0.25em 0.7em; text-align: right; white-space: nowrap; }
table.srbench-table th.method, table.srbench-table td.method, table.srbench-table th.block { text-align: left; }
table.srbench-table caption + thead, table.srbench-table caption + tbody { border-top: 2px solid #222; }
table.srbench-table thead { border-bottom: 1px solid #222; }
table.srbench-table tbody + tbody { border-top: 1px solid #999; }
table.srbench-table tbody:last-of-type { border-bottom: 2px solid #222; }
table.srbench-table tr.reported td, table.srbench-table tr.other-protocol td { color: #555; font-style: italic; }
table.srbench-table tr.other-protocol-head td { border-top: 1px dashed #999; color: #555; }
table.srbench-table tfoot td { text-align: left; font-size: 12px; color: #444; white-space: normal; }
""".strip()


def _tr(cells: list[str], cls: str = "") -> str:
    return (f'<tr class="{cls}">' if cls else "<tr>") + "".join(cells) + "</tr>"


def _foot(lines: list[str], width: int) -> list[str]:
    return ["<tfoot>", _tr([f'<td colspan="{width}">' + "<br>".join(lines) + "</td>"]), "</tfoot>"] if lines else []


def _body_rows(table, block, with_block: bool, width: int) -> list[str]:
    out = []
    span = len(block.rows) + (1 + len(block.others) if block.others else 0)
    for i, row in enumerate([*block.rows, *block.others]):
        cells = []
        if with_block and i == 0:
            cells.append(f'<th class="block" rowspan="{span}">{escape(block.label)}</th>')
        if i == len(block.rows):
            out.append(_tr([f'<td class="method" colspan="{width - with_block}"><em>{escape(table.others_head)}</em>'
                            "</td>"], "other-protocol-head"))
        method, *data = row_cells(block, row, table.joined, MARKUP)
        cells += [f'<td class="method">{method}</td>', *(f"<td>{c}</td>" for c in data)]
        kind = "measured" if not row.method.reported else "other-protocol" if row.method.other_protocol else "reported"
        out.append(_tr(cells, kind))
    return out


def _table(table) -> list[str]:
    lines = ['<table class="srbench-table">', f"<caption>{escape(table.caption)}</caption>"]
    cost = [f'<th rowspan="2">{escape(h)}</th>' for h in table.cost_heads]
    if table.grouped:
        first = table.blocks[0]
        head1 = [f'<th class="block" rowspan="2">{escape(table.block_head)}</th>',
                 '<th class="method" rowspan="2">Method</th>']
        head1 += [f"<th>{escape(g)}</th>" if table.joined else f'<th colspan="{len(idx)}">{escape(g)}</th>'
                  for g, idx in groups(first.columns)]
        head2 = [f"<th>{escape(h)}</th>" for h in sub_heads(first, table.joined)]
        lines += ["<thead>", _tr(head1 + cost), _tr(head2), "</thead>"]
        width = 2 + len(head2) + len(cost)
        for block in table.blocks:
            lines += ["<tbody>", *_body_rows(table, block, True, width), "</tbody>"]
    else:
        width = 1 + max(len(b.columns) for b in table.blocks) + len(cost)
        for block in table.blocks:
            head = ['<th class="method">Method</th>',
                    *(f"<th>{escape(h)}</th>" for h in [*sub_heads(block, False), *table.cost_heads])]
            lines += ["<tbody>", _tr(head, "head"), *_body_rows(table, block, False, width), "</tbody>"]
    return lines + _foot(note_lines(table, escape), width) + ["</table>"]


def render(tables: list) -> str:
    return "\n".join(line for t in tables for line in _table(t)) + "\n"


def render_plain(head, rows, notes, numeric_from=0) -> str:
    cls = lambda j: ' class="method"' if j < numeric_from else ""  # noqa: E731
    lines = ['<table class="srbench-table">', "<thead>",
             _tr([f"<th{cls(j)}>{escape(h)}</th>" for j, h in enumerate(head)]), "</thead>", "<tbody>"]
    lines += [_tr([f"<td{cls(j)}>{escape(c)}</td>" for j, c in enumerate(r)]) for r in rows]
    lines += ["</tbody>", *_foot([escape(n) for n in notes], len(head))]
    return "\n".join(lines + ["</table>"]) + "\n"
