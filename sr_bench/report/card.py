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
        per_scale = "integers" in card.get("scales", {})
        lines.append(f"  weights: --models {name}=PATH" + (" (one file per scale; join several with ':')" if per_scale else ""))
        for w in weights:
            scale = f"x{w['scale']} " if "scale" in w else ""
            lines.append(f"    {scale}{w.get('file', '?')}  [{w.get('format', '?')}]  sha256 {w.get('sha256') or 'unknown'}")
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
            lines.append(f"    [{b.get('protocol', '?')}{extra}] {b.get('source', '?')}: {len(b.get('rows', []))} cells")
    if paper.get("bibtex"):
        lines.append(f"  cite: srbench models {name} --bibtex")
    return "\n".join(lines)
