"""The sha256 of a file, read in blocks: the one helper for checkpoints, dataset files, archives, LPIPS weights and
run folders (decoded pixels have their own hash, ``imaging.io.pixel_sha256``)."""

from __future__ import annotations

import hashlib
import os


def file_sha256(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
