"""Model cards by model name: the built-in cards (``models/card_files.py``) and the cards of plugin models (a
``NAME.toml`` beside the plugin's module; ``models/registry.py``), as the listing and the tables read them."""

from __future__ import annotations

from sr_bench.models.card_files import cards_dir, model_cards
from sr_bench.models.registry import card_for

__all__ = ["card_for", "cards_dir", "model_cards"]
