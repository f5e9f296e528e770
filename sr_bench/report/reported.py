"""Rows "as reported in" a paper: values the model cards copy from published tables (``[[published]]`` blocks).

``--reported rcan,metasr,asdn`` adds one such row per name to a paper-layout table. A reported row is never mixed
silently with measured ones: it carries its sources (footnotes) and whether each source used another protocol than the
run's. Which values a row gets, for one (dataset, scale) cell:

- candidate blocks are the card's blocks of the same kind: ``NAME+`` takes the self-ensemble blocks, ``NAME`` the
  others; ``NAME:VARIANT`` (e.g. ``mslapsrn:D5R2``) only blocks of that variant, plain ``NAME`` the variant of its
  first block (the card lists the paper's main variant first);
- blocks under the run's protocol come first, then the others, each group in card order; the first block holding a
  (dataset, scale) gives all of that cell's metrics (one cell never mixes two sources), so a row can combine a
  paper's main table with, e.g., its x8 table;
- a block's ``compare`` list (e.g. ``["psnr"]`` where the paper's SSIM is MATLAB's built-in ``ssim``) drops the other
  metrics: those cells stay "–", as every cell the card lacks.

Printed precision: a block's values are shown with as many decimals as the block prints: its ``decimals`` table
(``decimals = {psnr = 2, ssim = 3}``) when the card states it, else the most decimals among its values (TOML keeps no
trailing zeros: 0.960 reads as 0.96), e.g. 3 for a 3-digit-SSIM table; never more than the metric's own precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from sr_bench.errors import UserError, unknown
from sr_bench.models.cards import card_for, model_cards
from sr_bench.scales import scale_text

ENSEMBLE_SUFFIX = "+"


@dataclass(frozen=True)
class ReportedValue:
    value: float
    decimals: int  # as printed by its source, capped at the metric's precision by the caller
    source: str
    protocol: str


@dataclass
class ReportedModel:
    """Everything a table needs about one ``--reported`` name."""

    name: str  # as given: rcan, rcan+, mslapsrn:D5R2
    card: dict
    label: str
    ensemble: bool
    variant: str | None
    # (dataset lower-case, scale text) -> metric -> value
    cells: dict[tuple[str, str], dict[str, ReportedValue]] = field(default_factory=dict)
    dropped: dict[str, set[str]] = field(default_factory=dict)  # source -> metrics its ``compare`` list leaves out

    def sources_for(self, keys) -> list[ReportedValue]:
        """The distinct sources behind the cells ``keys`` ((dataset, scale) pairs), in first-use order."""
        seen: dict[str, ReportedValue] = {}
        for key in keys:
            for v in self.cells.get(key, {}).values():
                seen.setdefault(v.source, v)
        return list(seen.values())


def _decimals(x) -> int:
    exponent = Decimal(repr(float(x))).as_tuple().exponent
    return max(0, -int(exponent))


def parse_reported(text: str) -> tuple[str, bool, str | None]:
    """``NAME``, ``NAME+`` or ``NAME:VARIANT`` -> (card name, ensemble, variant)."""
    name, _, variant = text.strip().partition(":")
    ensemble = name.endswith(ENSEMBLE_SUFFIX) and len(name) > 1
    base = name[: -len(ENSEMBLE_SUFFIX)] if ensemble else name
    if not base:
        raise UserError(f"bad --reported name {text!r}: write NAME, NAME+ or NAME:VARIANT, e.g. rcan,dbdn+,mslapsrn:D5R2")
    return base, ensemble, variant or None


def reported_model(text: str, protocol: str) -> ReportedModel:
    """The published values of ``text`` (see module doc), preferring blocks measured under ``protocol``."""
    base, ensemble, variant = parse_reported(text)
    card = card_for(base)
    if card is None:
        raise unknown("model card", base, model_cards())
    blocks = [b for b in card.get("published", []) if bool(b.get("self_ensemble", False)) == ensemble]
    if variant is not None:
        variants = sorted({b["variant"] for b in card.get("published", []) if "variant" in b})
        if variant not in variants:
            hint = f"its published variants: {', '.join(variants)}" if variants else "its card has no variants"
            raise UserError(f"--reported {text!r}: no published values for variant {variant!r} of {base!r}; {hint}")
        blocks = [b for b in blocks if b.get("variant") == variant]
    if not blocks:
        kind = "self-ensemble (NAME+) " if ensemble else ""
        raise UserError(f"--reported {text!r}: the card of {card['name']!r} has no {kind}published values; "
                        f"see `srbench models {card['name']}`")
    blocks.sort(key=lambda b: b.get("protocol") != protocol)  # stable: card order within each group
    shown_variant = variant or next((b["variant"] for b in blocks if "variant" in b), None)
    label = card.get("display_name", card["name"]) + (ENSEMBLE_SUFFIX if ensemble else "")
    if shown_variant and len({b.get("variant") for b in card.get("published", []) if "variant" in b}) > 1:
        label += f" ({shown_variant})"  # several published variants: say which one this row is
    out = ReportedModel(name=text.strip(), card=card, label=label, ensemble=ensemble, variant=shown_variant)
    for block in blocks:
        if variant is None and shown_variant is not None and block.get("variant", shown_variant) != shown_variant:
            continue  # one row = one variant
        decimals: dict[str, int] = {}
        printed = block.get("decimals", {})  # TOML drops trailing zeros: a card may state the printed precision
        parsed = []
        for row in block["rows"]:
            values = {"psnr": row[2], **({"ssim": row[3]} if len(row) > 3 else {})}
            parsed.append((str(row[0]).lower(), scale_text(Fraction(str(row[1]))), values))
            for m, v in values.items():
                decimals[m] = printed.get(m, max(decimals.get(m, 0), _decimals(v)))
        comparable = set(block.get("compare", decimals))
        if set(decimals) - comparable:
            out.dropped.setdefault(block["source"], set()).update(set(decimals) - comparable)
        for dataset, scale, values in parsed:
            if (dataset, scale) in out.cells:
                continue  # an earlier block has this cell: one cell's metrics never mix two sources
            out.cells[(dataset, scale)] = {
                m: ReportedValue(float(v), decimals[m], block["source"], block.get("protocol", "?"))
                for m, v in values.items() if m in comparable}
    return out


def year_of(card: dict | None) -> int | None:
    """The publication year a card states (bibtex ``year``, else a year in ``venue``), for ordering rows."""
    paper = (card or {}).get("paper", {})
    found = re.search(r"year\s*=\s*[{\"]?(\d{4})", paper.get("bibtex", ""))
    found = found or re.search(r"\b((?:19|20)\d\d)\b", paper.get("venue", ""))
    return int(found.group(1)) if found else None
