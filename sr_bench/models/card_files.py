"""The built-in model cards, read from their folder: TOML files edited in the repo's ``registry/`` (data, not code;
a wheel carries a copy, ``sr_bench/builtin_cards.py``), or the folder ``SRBENCH_REGISTRY`` names instead. A card names
its implementation lazily (``entry = "module:attr"``); ``models/cards.py`` adds plugin cards on top.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from sr_bench.builtin_cards import builtin_cards_dir
from sr_bench.errors import UserError
from sr_bench.models.modelcard import ModelCard, read_card


def cards_dir() -> Path:
    """``SRBENCH_REGISTRY`` (a folder that replaces the built-in cards), else the built-in cards (see builtin_cards)."""
    env = os.environ.get("SRBENCH_REGISTRY")
    return Path(env).expanduser() if env else builtin_cards_dir("registry")


@functools.lru_cache(maxsize=4)
def _load(folder: str) -> dict[str, dict]:
    cards: dict[str, dict] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        card = read_card(path)
        for key in ("name", "entry"):
            if key not in card:
                raise UserError(f"model card {path} has no {key!r}; every card needs name and entry")
        for variant in [card["name"], *card.get("aliases", [])]:
            cards[variant] = card
    return cards


def model_cards() -> dict[str, dict]:
    """name (and alias) -> built-in card."""
    folder = cards_dir()
    return _load(str(folder)) if folder.is_dir() else {}


@functools.lru_cache(maxsize=64)
def _checked(folder: str, name: str) -> ModelCard:
    card = _load(folder)[name]
    return ModelCard.from_dict(card, str(Path(folder) / f"{card['name']}.toml"))


def builtin_card(name: str) -> ModelCard:
    """The checked ``ModelCard`` of the built-in ``name``: what an adapter reads its scales, strategy, ``learned``
    and example weights from. A UserError when no built-in card has that name."""
    folder = cards_dir()
    if name not in model_cards():
        raise UserError(f"no built-in model card for {name!r} in {folder}; the adapter's model_name must be the "
                        f"name of its card")
    return _checked(str(folder), name)
