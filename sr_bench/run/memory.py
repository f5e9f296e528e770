"""Memory of the evaluation loop: allocator tuning, each forward's peak memory, the ``--max-memory`` budget
(docs/tiling.md, "Memory").

Allocator tuning: every (image, scale) allocates a few dozen image-sized float64 buffers whose sizes change from scale
to scale; glibc serves them with fresh mmaps and returns them on free, so each is page-faulted in again (measured
here: twice the time of SSIM on Urban100-sized images). Keeping freed memory in the heap removes that.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import re
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from sr_bench.errors import UserError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


@functools.cache
def libc():
    """The C library on Linux (for mallopt, malloc_trim, prctl), or None."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6") if sys.platform.startswith("linux") else None
    except OSError:
        return None


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and not to trim it. Returns whether it applied."""
    with contextlib.suppress(AttributeError):  # not glibc (musl has no mallopt)
        return libc() is not None and bool(libc().mallopt(_M_MMAP_THRESHOLD, 512 * 1024 * 1024)
                                           and libc().mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return False


def release_freed_memory() -> None:
    """Give the heap glibc keeps (``keep_freed_memory``) back to the OS, so that RSS is the memory in use."""
    if libc() is not None:
        with contextlib.suppress(AttributeError):
            libc().malloc_trim(0)


# ------------------------------------------------------------------------------------------ peak memory, budgets ----
_UNITS = {"": 1, "B": 1, **{prefix + suffix: base ** (i + 1) for i, prefix in enumerate("KMGT")
                            for suffix, base in (("", 1000), ("B", 1000), ("IB", 1024))}}


def parse_size(text: str) -> int:
    """'4GB' (10^9), '4GiB' (2^30), '512MB', '1.5G', '2000000000' -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
    unit = m.group(2).upper() if m else None
    if m is None or unit not in _UNITS or float(m.group(1)) <= 0:
        raise UserError(f"--max-memory {text!r} is not a size; write e.g. 4GB, 4GiB or 512MB")
    return int(float(m.group(1)) * _UNITS[unit])


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= div:
            return f"{n / div:.{1 if n < 10 * div else 0}f} {unit}".replace(".0 ", " ")
    return f"{n} B"


class MemoryBudgetExceeded(RuntimeError):
    """A CPU forward crossed ``--max-memory`` (the runner retries it in tiles)."""


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int | None:
    """This process's resident set size (Linux), or None."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


TRIM_STEP = 64 * 2**20  # RSS growth between two heap trims of the --max-memory guard


class _RssGuard(TorchDispatchMode):
    """Stops a CPU forward before its RSS crosses ``budget``: after every torch op, the RSS plus the largest op output
    so far (what the next op may add) must stay under it, freed heap first returned to the OS when it would not."""

    def __init__(self, budget: int):
        super().__init__()
        self.budget, self.largest, self.trimmed = budget, 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))

        def dense(tree):  # sparse tensors (the resize matrices) are small and have no single storage
            return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor) and t.layout == torch.strided]

        # new storage only: views and in-place results of the op's inputs allocate nothing
        inputs = {t.untyped_storage().data_ptr() for t in dense((args, kwargs))}
        made = sum(t.untyped_storage().nbytes() for t in dense(out) if t.untyped_storage().data_ptr() not in inputs)
        self.largest = max(self.largest, made)
        rss = rss_bytes()
        if rss is not None and rss + self.largest > self.budget and rss > self.trimmed + TRIM_STEP:
            # freed heap that glibc keeps (keep_freed_memory) counts in RSS: tiles and passes of different sizes
            # leave it fragmented, so give it back before deciding that the forward itself is too big (at most
            # once per TRIM_STEP of growth: a trim walks the whole heap)
            release_freed_memory()
            rss = self.trimmed = rss_bytes()
        if rss is not None and rss + self.largest > self.budget:
            raise MemoryBudgetExceeded(f"RSS {size_text(rss)} + {size_text(self.largest)} for the next op would "
                                       f"exceed --max-memory {size_text(self.budget)}")
        return out


def load_guard() -> None:
    """Import what a dispatch mode pulls in on first use (measured: ~900 modules, 160 MB of RSS), so that it is not
    counted against the first guarded forward."""
    with _RssGuard(2**62):
        torch.ones(1) + 1


class ForwardMemory:
    """Around one model forward: its peak memory (``peak``, bytes, None when not measurable; ``before``: the same
    measure when the forward started) and the ``--max-memory`` budget (docs/tiling.md, "Memory"). CUDA: peak
    allocated bytes, the budget capping the caching allocator. CPU (Linux): peak RSS (VmHWM, reset before the
    forward; with ``release`` the freed heap is first given back to the OS), the budget guarded by ``_RssGuard``."""

    def __init__(self, device, release: bool = True, budget: int | None = None):
        self.device = torch.device(device)
        self.release, self.budget, self.peak, self.before = release, budget, None, None
        self._guard, self._hwm = None, False

    def __enter__(self) -> "ForwardMemory":
        if self.device.type == "cuda":
            if self.budget is not None:
                total = torch.cuda.get_device_properties(self.device).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, self.budget / total), self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = int(torch.cuda.memory_allocated(self.device))
        elif self.device.type == "cpu":
            if self.release:
                release_freed_memory()
            with contextlib.suppress(OSError):  # VmHWM (the peak RSS) restarts from the current RSS (Linux >= 4.0)
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
                self._hwm = True
            self.before = rss_bytes() if self._hwm else None
            if self.budget is not None:
                self._guard = _RssGuard(self.budget).__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._guard is not None:
            self._guard.__exit__(*exc)
        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        elif self._hwm:
            with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
                self.peak = next((int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:")), None)
