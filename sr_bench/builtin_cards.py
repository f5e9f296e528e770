"""Where the built-in cards are: in an installed wheel, ``sr_bench/_builtin_cards/{registry,datasets}/`` (``setup.py``
copies the repository's top-level ``registry/`` and ``datasets/`` there); in a checkout or an editable install, those
top-level folders themselves, so an edited card counts without a rebuild."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from sr_bench.errors import UserError

PACKAGED = "_builtin_cards"
KINDS = {"registry": "model", "datasets": "dataset"}  # folder name (top level and in the package) -> what it holds


def builtin_cards_dir(folder: str) -> Path:
    """The folder holding the built-in ``*.toml`` cards of ``folder`` (``registry`` or ``datasets``).

    A UserError when there is none with at least one card: an install without its cards would otherwise look like
    one with no models or datasets.
    """
    packaged = importlib.resources.files("sr_bench") / PACKAGED / folder
    # A wheel is always unpacked on disk by pip, so the resource folder is a real path (card.path, mtimes).
    candidates = [Path(str(packaged))]
    checkout = Path(str(importlib.resources.files("sr_bench"))).resolve().parent
    if (checkout / "setup.cfg").is_file():  # the source tree (a bare ``datasets/`` in site-packages is not ours)
        candidates.append(checkout / folder)
    for place in candidates:
        if place.is_dir() and any(place.glob("*.toml")):
            return place
    looked = " or ".join(str(p) for p in candidates)
    raise UserError(f"no built-in {KINDS[folder]} cards found (looked in {looked}); this sr_bench install is "
                    f"incomplete: reinstall it (`pip install --force-reinstall sr_bench`, or `pip install .` in "
                    f"the source tree)")
