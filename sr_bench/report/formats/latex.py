"""LaTeX: a ``table`` float with a booktabs ``tabular`` that needs only ``\\usepackage{booktabs}`` (no siunitx, no
multirow; docs/paper-tables.md); best is ``\\textbf``, second ``\\underline``, notes follow in footnotesize."""

from __future__ import annotations

from sr_bench.report.formats.cells import Markup, groups, note_lines, row_cells, sub_heads

_HEADER = r"% sr_bench table: needs \usepackage{booktabs}"
_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # non-ASCII the tables print, spelled so that pdflatex needs no extra package or input encoding
    "×": r"$\times$", "–": "--", "—": "---", "±": r"$\pm$", "†": r"\dag{}", "‡": r"\ddag{}", "§": r"\S{}",
    "↑": r"$\uparrow$", "↓": r"$\downarrow$", "≈": r"$\approx$", "−": "-", "…": r"\dots{}", "→": r"$\to$",
    "“": "``", "”": "''", "’": "'", "·": r"$\cdot$", "²": r"$^2$",
}


def escape(text: str) -> str:
    return "".join(_SPECIAL.get(ch, ch) for ch in text)


MARKUP = Markup(
    escape=escape,
    best=lambda s: rf"\textbf{{{s}}}",
    second=lambda s: rf"\underline{{{s}}}",
    not_significant=r"\textsuperscript{\ddag}",
    reported=lambda label, notes: label + r"\textsuperscript{\dag" + ",".join(str(n) for n in notes) + "}",
)


def _row(cells: list[str]) -> str:
    return " & ".join(cells) + r" \\"


def _notes(lines: list[str]) -> list[str]:
    return ["", r"\smallskip", r"\begin{minipage}{\linewidth}\footnotesize", *[f"{x}\\par" for x in lines],
            r"\end{minipage}"] if lines else []


def _rows(table, block, width: int, labelled: bool, pad: int = 0) -> list[str]:
    """The block's rows (``labelled``: the first starts with the block's label), then a rule and an italic heading
    over the rows reported under another protocol, and those rows."""
    lines = []
    first = 1 + labelled  # the first column the heading spans
    for i, row in enumerate([*block.rows, *block.others]):
        if i == len(block.rows):
            lines += [rf"\cmidrule(l){{{first}-{width}}}", _row([""] * labelled + [
                rf"\multicolumn{{{width - first + 1}}}{{l}}{{\textit{{{escape(table.others_head)}}}}}"])]
        lead = [escape(block.label) if i == 0 else ""] * labelled
        lines.append(_row(lead + row_cells(block, row, table.joined, MARKUP, pad)))
    return lines


def _paper(table) -> list[str]:
    first = table.blocks[0]
    data = len(sub_heads(first, table.joined))
    spec = "ll" + "c" * data + "r" * len(table.cost_heads)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if table.joined:
        heads = [escape(g) for g, _ in groups(first.columns)]
        lines.append(_row([escape(table.block_head), "Method", *heads, *map(escape, table.cost_heads)]))
        lines.append(_row(["", "", *map(escape, sub_heads(first, True)), *[""] * len(table.cost_heads)]))
    else:
        heads, rules, col = ["", ""], [], 3
        for g, idx in groups(first.columns):
            heads.append(rf"\multicolumn{{{len(idx)}}}{{c}}{{{escape(g)}}}")
            rules.append(rf"\cmidrule(lr){{{col}-{col + len(idx) - 1}}}")
            col += len(idx)
        lines.append(_row(heads + [""] * len(table.cost_heads)))
        lines.append(" ".join(rules))
        lines.append(_row([escape(table.block_head), "Method", *map(escape, sub_heads(first, False)),
                           *map(escape, table.cost_heads)]))
    for block in table.blocks:
        lines += [r"\midrule", *_rows(table, block, 2 + data + len(table.cost_heads), True)]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _scales(table) -> list[str]:
    width = max(len(b.columns) for b in table.blocks)
    spec = "l" + "c" * width + "r" * len(table.cost_heads)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    for k, block in enumerate(table.blocks):
        pad = width - len(block.columns)
        lines += [r"\midrule"] * bool(k) + [
            _row(["Method", *map(escape, sub_heads(block, False)), *[""] * pad, *map(escape, table.cost_heads)]),
            r"\midrule", *_rows(table, block, 1 + width + len(table.cost_heads), False, pad)]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _table(table) -> list[str]:
    body = _paper(table) if table.grouped else _scales(table)
    return [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(table.caption)}}}", *body,
            *_notes(note_lines(table, escape)), r"\end{table}"]


def render(tables: list) -> str:
    return "\n\n".join([_HEADER, *("\n".join(_table(t)) for t in tables)]) + "\n"


def render_plain(head, rows, notes, numeric_from=0) -> str:
    spec = "l" * numeric_from + "r" * (len(head) - numeric_from)
    lines = [_HEADER, r"\begin{table}[t]", r"\centering", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             _row([escape(h) for h in head]), r"\midrule"]
    lines += [_row([escape(c) for c in r]) for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}", *_notes([escape(x) for x in notes])]
    return "\n".join(lines + [r"\end{table}"]) + "\n"
