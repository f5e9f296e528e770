"""Model cards: TOML files edited in the repo's ``registry/`` folder (data, not code; a wheel carries a copy).

A card names its implementation lazily (``entry = "module:attr"``) and carries what tables and users need to know
without importing anything: paper, scale support, input contract, parameter counts, weight releases, published results.
"""

from __future__ import annotations

import functools
import os
import tomllib
from pathlib import Path

from sr_bench.builtin_cards import builtin_cards_dir
from sr_bench.errors import UserError


def cards_dir() -> Path:
    """``SRBENCH_REGISTRY`` (a folder that replaces the built-in cards), else the built-in cards (see builtin_cards)."""
    env = os.environ.get("SRBENCH_REGISTRY")
    return Path(env).expanduser() if env else builtin_cards_dir("registry")


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> dict[str, dict]:
    cards: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        try:
            card = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as e:
            raise UserError(f"model card {path} is not valid TOML ({e}); fix or remove it") from None
        for key in ("name", "entry"):
            if key not in card:
                raise UserError(f"model card {path} has no {key!r}; every card needs name and entry")
        for variant in [card["name"], *card.get("aliases", [])]:
            cards[variant] = card
    return cards


def model_cards() -> dict[str, dict]:
    """name (and alias) -> card."""
    folder = cards_dir()
    return _load(str(folder)) if folder.is_dir() else {}


def card_for(name: str) -> dict | None:
    """A built-in's card, or a plugin's (a ``NAME.toml`` beside its module; ``models/registry.py``), or None."""
    from sr_bench.models import registry  # registry imports this module

    if not registry.overridden(name):
        card = model_cards().get(name)
        if card is not None:
            return card
    return registry.plugin_card(name)
