"""Where dataset images live: the data root, a folder holding one sub-folder per card (``Set5/``, ``B100/``, ...).

Order: the explicit argument (``--data-root``), then ``SRBENCH_DATA``, then the repo's ``datasets/`` folder (which
also holds the cards, so ``srbench datasets fetch`` works with no setup). Only the first one that is set is used, so a
run never silently mixes images from two places.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import sr_bench

REPO_DATASETS = Path(sr_bench.__file__).resolve().parents[1] / "datasets"


@dataclass(frozen=True)
class DataRoot:
    path: Path
    origin: str  # how it was chosen, for messages: "--data-root", "SRBENCH_DATA" or "default"

    def describe(self) -> str:
        return f"{self.path} (from {self.origin})"


def resolve_root(data_root: str | Path | None = None) -> DataRoot:
    if data_root is not None and str(data_root) != "":
        return DataRoot(Path(data_root).expanduser(), "--data-root")
    env = os.environ.get("SRBENCH_DATA")
    if env:
        return DataRoot(Path(env).expanduser(), "SRBENCH_DATA")
    return DataRoot(REPO_DATASETS, "default")


def dataset_folder(root: DataRoot, folder: str) -> Path:
    """``root/folder``, accepting a folder that differs only in case (``set5/`` for ``Set5``)."""
    exact = root.path / folder
    if exact.is_dir() or not root.path.is_dir():
        return exact
    for child in root.path.iterdir():
        if child.name.lower() == folder.lower() and child.is_dir():
            return child
    return exact


def where_hint(key: str) -> str:
    return (f"point --data-root DIR or SRBENCH_DATA=DIR at the folder that holds it, "
            f"or download it with `srbench datasets fetch {key}`")
