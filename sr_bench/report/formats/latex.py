"""LaTeX: a ``table`` float with a booktabs ``tabular`` (``\\toprule``, ``\\midrule``, ``\\cmidrule``,
``\\multicolumn`` group heads) that compiles with a plain LaTeX install: only ``\\usepackage{booktabs}`` is needed
(no siunitx, no multirow). Best is ``\\textbf``, second ``\\underline``; notes follow the tabular in footnotesize."""

from __future__ import annotations

from sr_bench.report.formats.cells import Markup, groups, method_text, row_cells, sub_heads

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


def _notes(table) -> list[str]:
    lines = [escape(s) for s in table.symbols]
    lines += [f"[{k}] {escape(text)}" for k, text in enumerate(table.footnotes, 1)]
    if not lines:
        return []
    return ["", r"\smallskip", r"\begin{minipage}{\linewidth}\footnotesize", *[f"{x}\\par" for x in lines],
            r"\end{minipage}"]


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
    width = 2 + data + len(table.cost_heads)
    for block in table.blocks:
        lines.append(r"\midrule")
        for i, row in enumerate(block.rows):
            lines.append(_row([escape(block.label) if i == 0 else "", method_text(row, MARKUP),
                               *row_cells(block, row, table.joined, MARKUP), *map(escape, row.cost)]))
        if block.others:
            lines += _others_head(table, 2, width)
            lines += [_row(["", method_text(row, MARKUP), *row_cells(block, row, table.joined, MARKUP),
                            *map(escape, row.cost)]) for row in block.others]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _others_head(table, first: int, width: int) -> list[str]:
    """A rule and an italic heading over the rows reported under another protocol (from column ``first``)."""
    return [rf"\cmidrule(l){{{first}-{width}}}",
            _row([""] * (first - 1)
                 + [rf"\multicolumn{{{width - first + 1}}}{{l}}{{\textit{{{escape(table.others_head)}}}}}"])]


def _scales(table) -> list[str]:
    width = max(len(b.columns) for b in table.blocks)
    spec = "l" + "c" * width + "r" * len(table.cost_heads)
    lines = [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    for k, block in enumerate(table.blocks):
        pad = [""] * (width - len(block.columns))
        if k:
            lines.append(r"\midrule")
        lines.append(_row(["Method", *map(escape, sub_heads(block, False)), *pad, *map(escape, table.cost_heads)]))
        lines.append(r"\midrule")
        for row in block.rows:
            lines.append(_row([method_text(row, MARKUP), *row_cells(block, row, False, MARKUP), *pad,
                               *map(escape, row.cost)]))
        if block.others:
            lines += _others_head(table, 1, 1 + width + len(table.cost_heads))
            lines += [_row([method_text(row, MARKUP), *row_cells(block, row, False, MARKUP), *pad,
                            *map(escape, row.cost)]) for row in block.others]
    return lines + [r"\bottomrule", r"\end{tabular}"]


def _table(table) -> list[str]:
    body = _paper(table) if table.grouped else _scales(table)
    return [r"\begin{table}[t]", r"\centering", rf"\caption{{{escape(table.caption)}}}", *body, *_notes(table),
            r"\end{table}"]


def render(tables: list) -> str:
    out: list[str] = [r"% sr_bench table: needs \usepackage{booktabs}"]
    for t in tables:
        out += ["", *_table(t)]
    return "\n".join(out) + "\n"


def render_plain(head, rows, notes, caption="", numeric_from=0) -> str:
    spec = "l" * numeric_from + "r" * (len(head) - numeric_from)
    lines = [r"% sr_bench table: needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering"]
    if caption:
        lines.append(rf"\caption{{{escape(caption)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule", _row([escape(h) for h in head]), r"\midrule"]
    lines += [_row([escape(c) for c in r]) for r in rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    if notes:
        lines += ["", r"\smallskip", r"\begin{minipage}{\linewidth}\footnotesize",
                  *[f"{escape(x)}\\par" for x in notes], r"\end{minipage}"]
    return "\n".join(lines + [r"\end{table}"]) + "\n"
