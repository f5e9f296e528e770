"""Memory of the evaluation loop: allocator tuning, each forward's peak memory, the ``--max-memory`` budget.

Allocator tuning for long evaluation loops.

Every (image, scale) allocates a few dozen image-sized float64 buffers of sizes that change from scale to scale.
glibc serves such blocks with fresh mmaps and returns them on free, so each one is page-faulted in again: measured
here, that doubled the time of SSIM on Urban100-sized images. Keeping freed memory in the heap removes it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

from sr_bench.errors import UserError

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_done = False


def keep_freed_memory() -> bool:
    """Ask glibc to serve large blocks from the heap and not to trim it. Returns whether it applied."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 512 * 1024 * 1024) and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    _done = bool(ok)
    return _done


# ------------------------------------------------------------------------------------------ peak memory, budgets ----
_UNITS = {"": 1, "B": 1, "K": 1000, "KB": 1000, "KIB": 1024, "M": 1000**2, "MB": 1000**2, "MIB": 1024**2,
          "G": 1000**3, "GB": 1000**3, "GIB": 1024**3, "T": 1000**4, "TB": 1000**4, "TIB": 1024**4}


def parse_size(text: str) -> int:
    """'4GB' (10^9), '4GiB' (2^30), '512MB', '1.5G', '2000000000' -> bytes."""
    import re

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


def _reset_rss_peak() -> bool:
    """Make VmHWM (the kernel's peak RSS) start again from the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _rss_peak() -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def release_freed_memory() -> None:
    """Give the heap glibc keeps (``keep_freed_memory``) back to the OS, so that RSS is the memory in use."""
    name = ctypes.util.find_library("c") if sys.platform.startswith("linux") else None
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


TRIM_STEP = 64 * 2**20  # RSS growth between two heap trims of the --max-memory guard


class _RssGuard:
    """A dispatch mode that stops a CPU forward before it crosses ``budget`` bytes of RSS: after every torch op it
    checks that the RSS plus the largest op output seen so far (what the next op may add) stays under the budget,
    first returning freed heap to the OS when it would not."""

    def __init__(self, budget: int):
        from torch.utils._python_dispatch import TorchDispatchMode

        guard = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                guard.check(out, (args, kwargs))
                return out

        self.budget, self.largest, self.trimmed, self.mode = budget, 0, 0, Mode()

    def check(self, out, given) -> None:
        import torch
        from torch.utils._pytree import tree_leaves

        def dense(tree):  # sparse tensors (the resize matrices) are small and have no single storage
            return [t for t in tree_leaves(tree) if isinstance(t, torch.Tensor) and t.layout == torch.strided]

        # new storage only: views and in-place results of the op's inputs allocate nothing
        inputs = {t.untyped_storage().data_ptr() for t in dense(given)}
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


def load_guard() -> None:
    """Import what a dispatch mode pulls in on first use (measured: ~900 modules, 160 MB of RSS), so that it is not
    counted against the first guarded forward."""
    import torch

    with _RssGuard(2**62).mode:
        torch.ones(1) + 1


class ForwardMemory:
    """Around one model forward: its peak memory (``peak``, bytes, None when not measurable; ``before``: the same
    measure when the forward started) and, on CPU, the ``--max-memory`` guard.

    CUDA: ``torch.cuda.max_memory_allocated`` over the forward (weights, input and activations the caching allocator
    handed out). CPU (Linux): the process's peak resident set (VmHWM, reset before the forward); with ``release``
    the freed heap is first given back to the OS, so the figure is the memory in use before the forward plus what
    the forward added (without it, heap kept from earlier work counts too). A CPU ``budget`` stops the forward
    with ``MemoryBudgetExceeded`` before an op would take the RSS past it (see ``_RssGuard``); on CUDA the budget
    caps the caching allocator (``set_per_process_memory_fraction``), which raises CUDA's out-of-memory error.
    """

    def __init__(self, device, release: bool = True, budget: int | None = None):
        import torch

        self.device = torch.device(device)
        self.release, self.budget, self.peak, self.before = release, budget, None, None
        self._mode = None
        self._hwm = False

    def __enter__(self) -> "ForwardMemory":
        import torch

        if self.device.type == "cuda":
            if self.budget is not None:
                total = torch.cuda.get_device_properties(self.device).total_memory
                torch.cuda.set_per_process_memory_fraction(min(1.0, self.budget / total), self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = int(torch.cuda.memory_allocated(self.device))
        elif self.device.type == "cpu":
            if self.release:
                release_freed_memory()
            self._hwm = _reset_rss_peak()
            self.before = rss_bytes() if self._hwm else None
            if self.budget is not None:
                self._mode = _RssGuard(self.budget).mode
                self._mode.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        if self._mode is not None:
            self._mode.__exit__(*exc)
        if self.device.type == "cuda":
            self.peak = int(torch.cuda.max_memory_allocated(self.device))
        elif self._hwm:
            self.peak = _rss_peak()
