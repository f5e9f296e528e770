"""What a cell and a method label say, independent of the markup: each format supplies its ``Markup``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from sr_bench.report.paper_table import BEST, SECOND, Block, Cell, Column, Row


@dataclass(frozen=True)
class Markup:
    escape: Callable[[str], str]
    best: Callable[[str], str]
    second: Callable[[str], str]
    not_significant: str  # appended to a best value that the paired test does not separate from the second
    reported: Callable[[str, tuple[int, ...]], str]  # (escaped label, footnote numbers) -> marked label


def cell_text(cell: Cell, m: Markup) -> str:
    """The value (bold when best, underlined when second), its marks (* incomplete, ? not verified), the ‡ mark,
    then the ± half-width."""
    text = m.escape(cell.text())
    if cell.mark == BEST:
        text = m.best(text)
    elif cell.mark == SECOND:
        text = m.second(text)
    text += m.escape(cell.marks_text())
    if cell.not_significant:
        text += m.not_significant
    return text + m.escape(cell.ci_text())


def groups(columns: list[Column]) -> list[tuple[str, list[int]]]:
    """Consecutive columns sharing a group head: [(group, [column indices])]."""
    out: list[tuple[str, list[int]]] = []
    for j, c in enumerate(columns):
        if out and out[-1][0] == c.group:
            out[-1][1].append(j)
        else:
            out.append((c.group, [j]))
    return out


def row_cells(block: Block, row: Row, joined: bool, m: Markup, pad: int = 0) -> list[str]:
    """The row's method, its data cells (one per column, or one per group with the metrics joined by '/'), ``pad``
    empty cells, then its cost cells."""
    label = m.escape(row.method.label + (" (untrained)" if row.method.untrained else ""))
    texts = [cell_text(c, m) for c in row.cells]
    if joined:
        texts = ["/".join(texts[j] for j in idx) for _, idx in groups(block.columns)]
    method = m.reported(label, row.notes) if row.method.reported else label
    return [method, *texts, *[""] * pad, *map(m.escape, row.cost)]


def note_lines(table, escape: Callable[[str], str] = str) -> list[str]:
    """What the symbols mean, then the numbered sources."""
    return [escape(s) for s in table.symbols] + [f"[{k}] {escape(text)}" for k, text in enumerate(table.footnotes, 1)]


def sub_heads(block: Block, joined: bool) -> list[str]:
    if not joined:
        return [c.label for c in block.columns]
    return ["/".join(block.columns[j].label for j in idx) for _, idx in groups(block.columns)]
