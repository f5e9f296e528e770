"""The OpenMP spin setting of the ``srbench`` command and the benchmark scripts (why, and the figures: docs/native.md,
"OpenMP spin"). No torch import here: it must run before torch loads libgomp, which reads the variable once. It is
process-wide, so importing the library never makes it."""

from __future__ import annotations

import os

SPIN = "1000"


def limit_spin() -> None:
    """Set ``GOMP_SPINCOUNT`` unless the user set it; effective only before torch is first imported."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN)
