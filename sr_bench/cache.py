"""Where sr_bench keeps what it can download or rebuild again: one root for every cache (``RULE``), holding
``datasets/`` (``srbench datasets fetch``), ``lpips/`` (AlexNet weights converted for LPIPS) and ``native/`` (the
compiled C kernels)."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "SRBENCH_CACHE"
RULE = "$SRBENCH_CACHE, else $XDG_CACHE_HOME/sr_bench, else ~/.cache/sr_bench"


def root() -> Path:
    """The cache root, read from the environment at each call (tests and users may change it)."""
    own = os.environ.get(ENV, "")
    if own:
        return Path(own).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores a relative value
    return base / "sr_bench"


def folder(name: str) -> Path:
    """``root() / name``: the cache of one kind (``datasets``, ``lpips``, ``native``)."""
    return root() / name
