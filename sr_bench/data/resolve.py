"""Turning what a user typed (a name, an alias, ``demo``, or a folder path) into a ``Dataset``."""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from sr_bench.data.cards import DatasetCard, all_names, find_card, load_cards
from sr_bench.data.items import Dataset, ImageItem
from sr_bench.data.roots import DataRoot, dataset_folder, resolve_root, where_hint
from sr_bench.errors import UserError, unknown
from sr_bench.imaging.io import IMAGE_EXTENSIONS

# The demo set: photographs only (no synthetic, microscopy or text images); camera.png keeps a gray image in the mix.
DEMO_FILES = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg")


def resolve_dataset(name: str, data_root: str | Path | None = None, cards_dir: str | Path | None = None) -> Dataset:
    """A dataset by card name or alias (case-insensitive), ``demo``, or a path to a folder of images. Names win over
    a same-named folder in the working directory; write ``./set5`` to mean the folder."""
    text = str(name).strip()
    if not text:
        raise UserError("empty dataset name; give a name such as set5 (see `srbench datasets list`) or a folder")
    if text.lower() == "demo":
        return demo_dataset()
    looks_like_path = any(sep in text for sep in ("/", "\\", os.sep)) or text.startswith((".", "~"))
    card = None if looks_like_path else find_card(text, cards_dir)
    if card is not None:
        return card_dataset(card, resolve_root(data_root))
    path = Path(text).expanduser()
    if path.is_dir():
        return folder_dataset(path)
    if path.exists():
        raise UserError(f"{text} is a file; a dataset is a name (see `srbench datasets list`) or a folder of images")
    if looks_like_path:
        raise UserError(f"dataset folder {text} does not exist; check the path")
    err = unknown("dataset", text, [*all_names(load_cards(cards_dir)), "demo"])
    raise UserError(f"{err} (or give a path to a folder of images)")


def demo_dataset() -> Dataset:
    """Photographs shipped inside the scikit-image wheel, so a run works offline with no downloaded data; read from
    the installed package files (scikit-image's network fetchers are never used)."""
    try:
        folder = Path(str(importlib.resources.files("skimage") / "data"))
    except ModuleNotFoundError:
        raise UserError("the demo dataset needs scikit-image (pip install scikit-image); "
                        "or name a dataset / image folder instead") from None
    missing = [f for f in DEMO_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"demo images {', '.join(missing)} are missing from {folder}; reinstall scikit-image "
                        "(pip install --force-reinstall scikit-image)")
    items = [ImageItem(Path(f).stem, folder / f) for f in DEMO_FILES]
    return Dataset(name="demo", kind="demo", items=items, folder=folder)


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, by extension (case-insensitive), skipping hidden files such as the
    ``._name.png`` resource forks macOS leaves on shared drives."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def folder_dataset(folder: Path) -> Dataset:
    """Any folder of images (not searched recursively), named after the folder."""
    files = image_files(folder)
    if not files:
        raise UserError(f"folder {folder} holds no images ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}); "
                        "point at the folder that holds the image files (sub-folders are not searched)")
    by_stem: dict[str, Path] = {}
    for p in files:
        if p.stem in by_stem:
            raise UserError(f"folder {folder} has two images named {p.stem!r} ({by_stem[p.stem].name}, {p.name}); "
                            "rename or remove one, as results are keyed by name")
        by_stem[p.stem] = p
    name = folder.resolve().name or str(folder)
    return Dataset(name=name, kind="folder", items=[ImageItem(s, p) for s, p in by_stem.items()], folder=folder)


def card_dataset(card: DatasetCard, root: DataRoot) -> Dataset:
    folder = dataset_folder(root, card.folder)
    if not folder.is_dir():
        raise UserError(f"dataset {card.name} not found: {root.not_found(card.folder)}; {where_hint(card.key)}")
    missing = [f.name for f in card.files if not (folder / f.name).is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise UserError(f"dataset {card.name} in {folder} is missing {len(missing)} of {len(card.files)} files "
                        f"({shown}); run `srbench datasets verify {card.key}`, or re-download with "
                        f"`srbench datasets fetch {card.key} --force`")
    items = [ImageItem(f.stem, folder / f.name, expected=f) for f in card.files]
    return Dataset(name=card.name, kind="card", items=items, folder=folder, card=card)


@dataclass(frozen=True)
class DatasetStatus:
    card: DatasetCard
    folder: Path
    found: int  # card files present by name (not hashed; `verify` does that)

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def aliases(self) -> tuple[str, ...]:
        return self.card.aliases

    @property
    def n_files(self) -> int:
        return len(self.card.files)

    @property
    def present(self) -> bool:
        return self.found == self.n_files

    @property
    def state(self) -> str:
        if self.present:
            return "yes"
        return "no" if self.found == 0 else f"partial ({self.found}/{self.n_files})"


def list_datasets(data_root: str | Path | None = None, cards_dir: str | Path | None = None) -> list[DatasetStatus]:
    """Every card, with how many of its files are present where the data root says (the first place holding it)."""
    root = resolve_root(data_root)
    out = []
    for card in load_cards(cards_dir):
        folder = dataset_folder(root, card.folder)
        found = sum((folder / f.name).is_file() for f in card.files) if folder.is_dir() else 0
        out.append(DatasetStatus(card, folder, found))
    return out
