"""Atomic file writes: a temporary file in the target's folder, then ``os.replace``, so a reader (or a crash) never
sees half a file. The one helper for this job; everything that writes results, checkpoints, cached weights or
compiled kernels goes through it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], None], durable: bool = False) -> None:
    """Call ``write(tmp_path)`` and move the result to ``path``; nothing is left behind on failure. ``durable``: the
    bytes reach the disk before the rename (checkpoints, which a power cut must not leave empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results and caches are meant to be read by others
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def atomic_write_bytes(path: Path, data: bytes, durable: bool = False) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data), durable)
