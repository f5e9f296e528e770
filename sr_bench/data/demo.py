"""The ``demo`` dataset: natural photographs shipped inside the scikit-image wheel, so a run works offline with no
downloaded data. Read straight from the installed package files; scikit-image's network fetchers are never used."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from sr_bench.data.items import Dataset, ImageItem
from sr_bench.errors import UserError

# Photographs only (no synthetic, microscopy or text images); camera.png keeps a gray image in the mix.
DEMO_FILES = ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg")


def skimage_data_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("skimage") / "data"))
    except ModuleNotFoundError:
        raise UserError("the demo dataset needs scikit-image (pip install scikit-image); "
                        "or name a dataset / image folder instead") from None


def demo_dataset() -> Dataset:
    folder = skimage_data_dir()
    missing = [f for f in DEMO_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"demo images {', '.join(missing)} are missing from {folder}; reinstall scikit-image "
                        "(pip install --force-reinstall scikit-image)")
    items = [ImageItem(Path(f).stem, folder / f) for f in DEMO_FILES]
    return Dataset(name="demo", kind="demo", items=items, folder=folder)
