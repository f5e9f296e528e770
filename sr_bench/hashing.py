"""The sha256 of a file, read in 1 MiB blocks: the one helper for checkpoints, dataset files, archives, LPIPS weights
and run folders (decoded pixels have their own hash, ``imaging.io.pixel_sha256``)."""

from __future__ import annotations

import hashlib
import os

_BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()
