"""The one reading of a model card's published numbers (``[[published]]`` blocks), used by every view (``table
--reported``, ``table --paper``, the reports, ``plot --paper``), by the rules of docs/paper-tables.md's "Reported
rows"."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Callable

from sr_bench.errors import UserError, unknown
from sr_bench.models.cards import card_for, model_cards
from sr_bench.scales import scale_text

ENSEMBLE_SUFFIX = "+"

Key = tuple[str, str]  # (dataset lower-case, scale text)
CardLookup = Callable[[str], "dict | None"]


@dataclass(frozen=True)
class ReportedValue:
    value: float
    decimals: int  # as printed by its source
    source: str
    protocol: str
    verified: bool = True
    text: str = ""  # the card's own string, when it wrote one ("38.00")

    def printed(self, cap: int | None = None) -> str:
        """The value as the source prints it (at most ``cap`` decimals, the metric's own precision)."""
        if self.text and (cap is None or self.decimals <= cap):
            return self.text
        return f"{self.value:.{self.decimals if cap is None else min(self.decimals, cap)}f}"


@dataclass
class PublishedTable:
    """The merged blocks of one protocol (or, for ``other``, of every other protocol, each cell from the first
    protocol in card order that has it)."""

    cells: dict[Key, dict[str, ReportedValue]] = field(default_factory=dict)
    conflicts: dict[Key, str] = field(default_factory=dict)  # key -> the error message
    dropped: dict[str, set[str]] = field(default_factory=dict)  # source -> metrics its ``compare`` list leaves out
    disagree: dict[str, list[tuple[Key, str]]] = field(default_factory=dict)  # secondary source -> its other values

    def get(self, key: Key) -> dict[str, ReportedValue]:
        """The cell's values ({} when the card has none); a conflict between two blocks is a UserError."""
        if key in self.conflicts:
            raise UserError(self.conflicts[key])
        return self.cells.get(key, {})

    def sources_for(self, keys) -> list[ReportedValue]:
        """The distinct sources behind the cells ``keys``, in first-use order (one value standing for each)."""
        seen: dict[str, ReportedValue] = {}
        for key in keys:
            for v in self.get(key).values():
                seen.setdefault(v.source, v)
        return list(seen.values())


@dataclass
class ReportedModel:
    """Everything a table needs about one ``--reported`` name: its cells under the run's protocol (``cells``) and
    under other protocols (``other``: shown apart, never ranked)."""

    name: str  # as given: rcan, rcan+, mslapsrn:D5R2
    card: dict
    label: str
    ensemble: bool
    variant: str | None
    cells: PublishedTable = field(default_factory=PublishedTable)
    other: PublishedTable = field(default_factory=PublishedTable)


def _decimals_of(x) -> int:
    exponent = Decimal(str(x) if isinstance(x, str) else repr(float(x))).as_tuple().exponent
    return max(0, -int(exponent))


def _row_values(row) -> dict:
    return {"psnr": row[2], **({"ssim": row[3]} if len(row) > 3 else {})}


def block_values(block: dict) -> list[tuple[Key, dict[str, ReportedValue]]]:
    """One block's cells as printed values (the metrics its ``compare`` list keeps): with the card's own digits
    (``models.modelcard.keep_printed``), else its ``decimals``, else the most decimals among its values of that
    metric."""
    printed = block.get("decimals", {})
    most: dict[str, int] = {}
    for row in block["rows"]:
        for m, v in _row_values(row).items():
            most[m] = max(most.get(m, 0), _decimals_of(v))
    keep = set(block.get("compare", most))
    verified = bool(block.get("verified", True))
    texts = block.get("printed") or []  # the card's own digits (models.modelcard.keep_printed)
    out = []
    for i, row in enumerate(block["rows"]):
        key = (str(row[0]).lower(), scale_text(Fraction(str(row[1]))))
        values = {}
        for j, (m, v) in enumerate(_row_values(row).items(), start=2):
            if m not in keep:
                continue
            text = texts[i][j] if i < len(texts) and j < len(texts[i]) and m not in printed else None
            v = v if isinstance(v, str) or text is None else text
            written = isinstance(v, str)  # digits as the card wrote them, else the block's decimals
            values[m] = ReportedValue(float(v), _decimals_of(v) if written else printed.get(m, most[m]),
                                      block["source"], block["protocol"], verified, v if written else "")
        out.append((key, values))
    return out


def _same(a: ReportedValue, b: ReportedValue) -> bool:
    """Two values agree when they print the same at the coarser precision (38.27 and a repo's exact 38.274168)."""
    d = min(a.decimals, b.decimals)
    return f"{a.value:.{d}f}" == f"{b.value:.{d}f}"


def merge_blocks(card_name: str, blocks: list[dict]) -> PublishedTable:
    """Blocks of one protocol, in card order, as one table."""
    out = PublishedTable()
    for block in blocks:
        kept = set(block.get("compare", ["psnr", "ssim"]))
        measured = {m for row in block["rows"] for m in _row_values(row)}
        if measured - kept:
            out.dropped.setdefault(block["source"], set()).update(measured - kept)
        for key, values in block_values(block):
            before, cell = out.cells.get(key), f"{key[0]} ×{key[1]}"
            if before is None:
                out.cells[key] = values
                continue
            for m, v in values.items():
                old = before.get(m)
                if old is None or _same(old, v):
                    continue
                if block.get("secondary"):
                    out.disagree.setdefault(block["source"], []).append((key, f"{cell} {m.upper()} {v.printed()}"))
                elif key not in out.conflicts:
                    out.conflicts[key] = (
                        f"model card {card_name!r}: two published {m.upper()} values for {cell} under "
                        f"protocol {v.protocol}: {old.printed()} in {old.source!r} and {v.printed()} in {v.source!r}; "
                        "keep one (drop the cell from one block) or mark the later block secondary = true "
                        "(docs/model-cards.md)")
    return out


def matching_blocks(card: dict, ensemble: bool, variant: str | None, strict_variant: bool = True) -> list[dict]:
    """The card's blocks for this kind of row: self-ensemble or not; with ``strict_variant`` a block with a variant
    only when it is ``variant`` (blocks without one always match)."""
    return [b for b in card.get("published", []) if bool(b.get("self_ensemble", False)) == ensemble
            and not (strict_variant and "variant" in b and b["variant"] != variant)]


def published_tables(card: dict, blocks: list[dict], protocol: str) -> tuple[PublishedTable, PublishedTable]:
    """(the merged blocks under ``protocol``, the merged blocks under the others: per cell the first other protocol
    in card order that has it)."""
    same = merge_blocks(card["name"], [b for b in blocks if b["protocol"] == protocol])
    other = PublishedTable()
    for p in dict.fromkeys(b["protocol"] for b in blocks if b["protocol"] != protocol):
        table = merge_blocks(card["name"], [b for b in blocks if b["protocol"] == p])
        for key, values in table.cells.items():
            if key not in same.cells and key not in other.cells and key not in other.conflicts:
                if key in table.conflicts:
                    other.conflicts[key] = table.conflicts[key]
                else:
                    other.cells[key] = values
        for k, v in table.dropped.items():
            other.dropped.setdefault(k, set()).update(v)
        for k, v in table.disagree.items():
            other.disagree.setdefault(k, []).extend(v)
    return same, other


def split_ensemble(name: str) -> tuple[str, bool]:
    if name.endswith(ENSEMBLE_SUFFIX) and len(name) > 1:
        return name[: -len(ENSEMBLE_SUFFIX)], True
    return name, False


def parse_reported(text: str) -> tuple[str, bool, str | None]:
    """``NAME``, ``NAME+`` or ``NAME:VARIANT`` -> (card name, ensemble, variant)."""
    name, _, variant = text.strip().partition(":")
    base, ensemble = split_ensemble(name)
    if not base:
        raise UserError(f"bad --reported name {text!r}: write NAME, NAME+ or NAME:VARIANT, "
                        "e.g. rcan,dbdn+,mslapsrn:D5R2")
    return base, ensemble, variant or None


def reported_model(text: str, protocol: str, cards: CardLookup = card_for) -> ReportedModel:
    """The published values of ``text``: under ``protocol`` in ``cells``, under others in ``other``. ``cards``: where
    cards are read (the installed ones, or the copy stored with a run)."""
    base, ensemble, variant = parse_reported(text)
    card = cards(base)
    if card is None:
        raise unknown("model card", base, model_cards())
    published = card.get("published", [])
    if variant is not None:
        variants = sorted({b["variant"] for b in published if "variant" in b})
        if variant not in variants:
            hint = f"its published variants: {', '.join(variants)}" if variants else "its card has no variants"
            raise UserError(f"--reported {text!r}: no published values for variant {variant!r} of {base!r}; {hint}")
    candidates = matching_blocks(card, ensemble, variant, strict_variant=False)
    if not candidates:
        kind = "self-ensemble (NAME+) " if ensemble else ""
        raise UserError(f"--reported {text!r}: the card of {card['name']!r} has no {kind}published values; "
                        f"see `srbench models {card['name']}`")
    shown_variant = variant or next((b["variant"] for b in candidates if "variant" in b), None)
    label = card.get("display_name", card["name"]) + (ENSEMBLE_SUFFIX if ensemble else "")
    if shown_variant and len({b.get("variant") for b in published if "variant" in b}) > 1:
        label += f" ({shown_variant})"  # several published variants: say which one this row is
    blocks = matching_blocks(card, ensemble, shown_variant)  # one row = one variant
    same, other = published_tables(card, blocks, protocol)
    return ReportedModel(name=text.strip(), card=card, label=label, ensemble=ensemble, variant=shown_variant,
                         cells=same, other=other)


def measured_card(model: str, cards: CardLookup = card_for) -> tuple[dict | None, bool]:
    """The card of a measured model, and whether it ran as a self-ensemble (``NAME+`` without a card of its own)."""
    card = cards(model)
    base, ensemble = split_ensemble(model)
    if card is None and ensemble:
        return cards(base), True
    return card, False


def published_for(model: str, config: dict | None, protocol: str, cards: CardLookup = card_for
                  ) -> PublishedTable | None:
    """The published values a measured ``model`` (with its run ``config``) is compared with under ``protocol``: the
    same merge as ``reported_model``, for the run's variant; None when the card has none."""
    card, ensemble = measured_card(model, cards)
    if not card:
        return None
    blocks = [b for b in matching_blocks(card, ensemble, (config or {}).get("variant")) if b["protocol"] == protocol]
    if not blocks:
        return None
    return merge_blocks(card["name"], blocks)


def year_of(card: dict | None) -> int | None:
    """The publication year a card states (bibtex ``year``, else a year in ``venue``), for ordering rows."""
    paper = (card or {}).get("paper", {})
    found = re.search(r"year\s*=\s*[{\"]?(\d{4})", paper.get("bibtex", ""))
    found = found or re.search(r"\b((?:19|20)\d\d)\b", paper.get("venue", ""))
    return int(found.group(1)) if found else None
