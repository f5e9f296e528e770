"""Markdown (GitHub): bold ``**x**`` for best, ``<u>x</u>`` for second; blocks of the paper layout start with the
scale in the first column; a scales-layout block is its own table (Markdown has one header row per table)."""

from __future__ import annotations

from sr_bench.report.formats.cells import Markup, note_lines, row_cells, sub_heads

MARKUP = Markup(
    escape=lambda s: s.replace("|", "\\|"),
    best=lambda s: f"**{s}**",
    second=lambda s: f"<u>{s}</u>",
    not_significant="‡",
    reported=lambda label, notes: f"{label} †" + "".join(f"[{n}]" for n in notes),
)


def _line(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _align(n_left: int, n_right: int) -> str:
    return "|" + "|".join(["---"] * n_left + ["---:"] * n_right) + "|"


def _rows(table, block, width: int, labelled: bool) -> list[str]:
    """The block's rows (``labelled``: the first starts with the block's label), then the rows reported under
    another protocol below an italic heading."""
    lines = []
    for i, row in enumerate([*block.rows, *block.others]):
        if i == len(block.rows):
            lines.append(_line([""] * labelled + [f"*{table.others_head}:*"] + [""] * (width - labelled - 1)))
        lead = [block.label if i == 0 else ""] * labelled
        lines.append(_line(lead + row_cells(block, row, table.joined, MARKUP)))
    return lines


def _table(table) -> list[str]:
    lines = [table.caption, ""]
    if table.grouped:  # the paper layout: one header, the scale starts each block
        first = table.blocks[0]
        heads = sub_heads(first, table.joined)
        groups = [c.group for c in first.columns]
        if table.joined:
            groups = list(dict.fromkeys(groups))
        head = [table.block_head, "Method", *(f"{g} {h}" for g, h in zip(groups, heads, strict=False)),
                *table.cost_heads]
        lines += [_line(head), _align(2, len(head) - 2)]
        for block in table.blocks:
            lines += _rows(table, block, len(head), True)
    else:
        for k, block in enumerate(table.blocks):
            head = ["Method", *sub_heads(block, False), *table.cost_heads]
            lines += [""] * bool(k) + [_line(head), _align(1, len(head) - 1)] + _rows(table, block, len(head), False)
    notes = note_lines(table)
    return lines + (["", *notes] if notes else [])


def render(tables: list) -> str:
    return "\n\n".join("\n".join(_table(t)) for t in tables) + "\n"


def render_plain(head, rows, notes, numeric_from=0) -> str:
    esc = MARKUP.escape
    lines = [_line([esc(h) for h in head]), _align(numeric_from, len(head) - numeric_from)]
    lines += [_line([esc(c) for c in r]) for r in rows]
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"
