"""The OpenMP spin setting of the ``srbench`` command and the benchmark scripts; no torch import here, since it must
run before torch loads libgomp, which reads the variable once.

After each parallel region torch's OpenMP threads otherwise spin on their cores for ~300,000 iterations, and on a
machine with few cores they take them from the threads that run the C kernels (``sr_bench.native``) between torch
ops; 1,000 is libgomp's own value for threads that outnumber the cores (measured figures: ``docs/native.md``). It is
a process-wide setting, so importing the library never makes it: a script that imports sr_bench keeps its own
OpenMP behaviour unless it calls ``limit_spin()`` first.
"""

from __future__ import annotations

import os

SPIN = "1000"


def limit_spin() -> None:
    """Set ``GOMP_SPINCOUNT`` unless the user set it; effective only before torch is first imported."""
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN)
