"""What the runner iterates over: a named, ordered list of images that load lazily."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sr_bench.data.cards import CardFile, DatasetCard
from sr_bench.imaging.io import read_image


@dataclass(frozen=True)
class ImageItem:
    name: str  # the file stem; rows are keyed on it, so it is unique within a dataset
    path: Path
    expected: CardFile | None = None  # the card entry, for card datasets

    def load(self) -> np.ndarray:
        """uint8 (H, W, C) pixels; ImageReadError (a UserError) if the file is unreadable."""
        return read_image(self.path)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    kind: str  # "card" | "folder" | "demo"
    items: list[ImageItem]
    folder: Path | None = None
    card: DatasetCard | None = None

    def __post_init__(self):
        object.__setattr__(self, "items", sorted(self.items, key=lambda it: it.name))

    def __len__(self) -> int:
        return len(self.items)
