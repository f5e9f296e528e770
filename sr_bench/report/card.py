"""One model card as text (``srbench models NAME``): what a user needs before running it — paper, scales, input
contract, parameters, where weights come from, and which published tables the suite can compare against."""

from __future__ import annotations


def _scales(card: dict) -> str:
    scales = card.get("scales", {})
    if "integers" in scales:
        text = "x" + ", x".join(str(i) for i in scales["integers"])
        if scales.get("also_builds"):
            text += " (the architecture also builds x" + ", x".join(str(i) for i in scales["also_builds"]) + ")"
        if scales.get("strategy"):
            return text + f"; other scales through {scales['strategy']} (or --model-opt strategy=... if it takes one)"
        return text + "; no other scales"
    if "range" in scales:
        low, high = scales["range"]
        text = f"any scale in ({low}, {high}] natively"
        return text + (f"; above {high} through {scales['beyond']}" if scales.get("beyond") else "")
    return "-"


def weights_files(card: dict) -> str:
    """The weight files the model takes, as its card declares them."""
    import os

    from sr_bench.models.modelcard import ModelCard

    if ModelCard.from_dict(card, card.get("name", "?")).per_scale_files:
        return f"one file per scale; several scales: PATH_x2{os.pathsep}PATH_x4, joined by '{os.pathsep}'"
    return "one file for every scale"


def card_text(card: dict) -> str:
    name = card["name"]
    lines = [f"{card.get('display_name', name)} ({name})" + (f" - {card['summary']}" if card.get("summary") else "")]
    if card.get("aliases"):
        lines.append(f"  aliases: {', '.join(card['aliases'])}")
    paper = card.get("paper", {})
    if paper:
        ref = ", ".join(x for x in (paper.get("venue"), f"arXiv:{paper['arxiv']}" if paper.get("arxiv") else None) if x)
        lines.append(f"  paper: {paper.get('title', '?')}" + (f" ({ref})" if ref else ""))
        if paper.get("code"):
            lines.append(f"  code: {paper['code']}")
    lines.append(f"  scales: {_scales(card)}")
    inp = card.get("input", {})
    if inp:
        lines.append(f"  input: {inp.get('color', '?')}, {inp.get('upsampling', '?')}-upsampling, "
                     f"values 0..{inp.get('value_range', '?')}")
    params = card.get("params", {})
    if params:
        lines.append("  parameters: " + ", ".join(f"{k} {v:,}" for k, v in params.items()))
    if card.get("learned", True):
        weights = card.get("weights", [])
        lines.append(f"  weights: --models {name}=PATH ({weights_files(card)})")
        for w in weights:
            scale = f"x{w['scale']} " if "scale" in w else ""
            lines.append(f"    {scale}{w.get('file', '?')}  [{w.get('format', '?')}]  "
                         f"sha256 {w.get('sha256') or 'unknown'}")
            if w.get("url"):
                lines.append(f"      {w['url']}")
        if card.get("weights_note"):
            lines.append(f"    note: {card['weights_note']}")
        if not weights and not card.get("weights_note"):
            lines.append("    no known release")
    published = card.get("published", [])
    if published:
        lines.append("  published results (srbench table RUN --paper compares them under the same protocol):")
        for b in published:
            extra = "".join(f", {k} {b[k]}" for k in ("variant",) if k in b)
            extra += ", self-ensemble (NAME+)" if b.get("self_ensemble") else ""
            extra += ", not verified against the paper" if b.get("verified") is False else ""
            lines.append(f"    [{b.get('protocol', '?')}{extra}] {b.get('source', '?')}: "
                         f"{len(b.get('rows', []))} cells")
    if paper.get("bibtex"):
        lines.append(f"  cite: srbench models {name} --bibtex")
    return "\n".join(lines)


def listing_table(cards: list[tuple[str, dict]]) -> str:
    """The Markdown table of ``srbench models``: one line per card (``(name, card)``; an alias of a card already
    listed is left out, a plugin without a card is a line of dashes)."""
    lines = ["| model | aliases | scales | parameters | input | paper |", "|---|---|---|---:|---|---|"]
    shown: set[int] = set()
    for n, card in cards:
        card = card or {}
        if card and id(card) in shown:
            continue
        shown.add(id(card))
        aliases = ", ".join(card.get("aliases", [])) or "-"
        scales = card.get("scales", {})
        scale_s = ("x" + ",".join(str(i) for i in scales["integers"])) if "integers" in scales else (
            f"({scales['range'][0]}, {scales['range'][1]}]" if "range" in scales else "plugin")
        params = card.get("params", {})
        param_s = ", ".join(f"{k} {v:,}" for k, v in params.items()) if params else "-"
        inp = card.get("input", {})
        inp_s = f"{inp.get('color', '?')}, {inp.get('upsampling', '?')}" if inp else "-"
        paper = card.get("paper", {})
        paper_s = f"{paper.get('venue', '')} arXiv:{paper['arxiv']}" if paper.get("arxiv") else paper.get("venue", "-")
        lines.append(f"| {card.get('name', n)} | {aliases} | {scale_s} | {param_s} | {inp_s} | {paper_s} |")
    return "\n".join(lines)


def bibtex(cards: list[dict]) -> list[str]:
    """The BibTeX entries of ``cards``, each paper once."""
    unique = {id(c): c for c in cards if c}
    return [c["paper"]["bibtex"] for c in unique.values() if c.get("paper", {}).get("bibtex")]
