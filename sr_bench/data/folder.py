"""Ad-hoc datasets: any folder of images (non-recursive), named after the folder."""

from __future__ import annotations

from pathlib import Path

from sr_bench.data.items import Dataset, ImageItem
from sr_bench.errors import UserError
from sr_bench.imaging.io import IMAGE_EXTENSIONS


def image_files(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, by extension (case-insensitive), skipping hidden files such as the
    ``._name.png`` resource forks macOS leaves on shared drives."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


def folder_dataset(folder: Path) -> Dataset:
    folder = folder.expanduser()
    if not folder.is_dir():
        raise UserError(f"dataset folder {folder} does not exist; give an existing folder of images or a dataset name "
                        "(see `srbench datasets list`)")
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
