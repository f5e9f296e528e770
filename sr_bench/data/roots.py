"""Where dataset images live: a data root, a folder holding one sub-folder per card (``Set5/``, ``B100/``, ...), found
in the order ``ORDER`` states (README, "Dataset"). Without a given root a dataset is read whole from ``./datasets``
or else from the cache, where ``srbench datasets fetch`` installs, so a fetched dataset is found from any directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sr_bench import cache

# The one wording of the order, for --help texts and error messages (tests/test_data_resolve.py checks README's).
ORDER = ("--data-root, else $SRBENCH_DATA, else ./datasets in the current directory, else the per-user cache "
         "~/.cache/sr_bench/datasets ($SRBENCH_CACHE/datasets, else $XDG_CACHE_HOME/sr_bench/datasets, when set)")
OPTION_HELP = (f"Folder holding Set5/, Set14/, ... Data root: {ORDER}; "
               "`srbench datasets fetch` installs into the cache by default.")


def user_cache() -> Path:
    """The per-user dataset cache: ``datasets/`` under the cache root (``sr_bench.cache``)."""
    return cache.folder("datasets")


@dataclass(frozen=True)
class DataRoot:
    """The places a dataset folder is looked for, in order; new downloads go to the last one (``path``)."""

    paths: tuple[Path, ...]
    origin: str  # how it was chosen, for messages: "--data-root", "SRBENCH_DATA" or "default"

    @property
    def path(self) -> Path:
        return self.paths[-1]

    def describe(self) -> str:
        if self.origin == "default":
            return " then ".join(map(str, self.paths)) + " (default: ./datasets, then the per-user cache)"
        return f"{self.path} (from {self.origin})"

    def not_found(self, folder: str) -> str:
        """Why ``folder`` was not found, for an error message."""
        if self.origin == "default":
            return f"no folder {folder}/ in {' or '.join(map(str, self.paths))}"
        if not self.path.is_dir():
            return f"data root {self.path} (from {self.origin}) does not exist"
        return f"no folder {self.path / folder} (data root from {self.origin})"


def resolve_root(data_root: str | Path | None = None) -> DataRoot:
    if data_root is not None and str(data_root) != "":
        return DataRoot((Path(data_root).expanduser(),), "--data-root")
    env = os.environ.get("SRBENCH_DATA")
    if env:
        return DataRoot((Path(env).expanduser(),), "SRBENCH_DATA")
    local, cache = Path.cwd() / "datasets", user_cache()
    return DataRoot((local, cache) if local.resolve() != cache.resolve() else (cache,), "default")


def dataset_folder(root: DataRoot, folder: str) -> Path:
    """The first ``place/folder`` that exists among the root's places, accepting a folder that differs only in case
    (``set5/`` for ``Set5``); if none does, where it would be installed (``root.path / folder``)."""
    for place in root.paths:
        if (place / folder).is_dir():
            return place / folder
        for child in place.iterdir() if place.is_dir() else ():
            if child.name.lower() == folder.lower() and child.is_dir():
                return child
    return root.path / folder


def where_hint(key: str) -> str:
    return (f"the data root is {ORDER}: point --data-root DIR or SRBENCH_DATA=DIR at the folder that holds it, "
            f"or download it with `srbench datasets fetch {key}`")
