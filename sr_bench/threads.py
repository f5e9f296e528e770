"""Evaluation arithmetic on the calling thread alone, with the numbers of the configured intra-op thread count.

Resizing, colour conversion, rounding, PSNR and SSIM are chains of element-wise torch ops on images of a few hundred
thousand values. With more than one intra-op thread each op wakes an OpenMP team, and on a busy machine a woken
thread waits for a core: measured on this project's shared 2-core machine, a sum over 61,440 values took 8-12 ms with
2 threads and 5 us with one, and SSIM of a 470x490 plane 1.3 s against 20 ms. ``one_thread()`` runs such code on the
calling thread; the model forwards keep their threads.

Element-wise results do not depend on the thread count, but a sum does: with N threads torch splits a full
reduction into N contiguous chunks of ``ceil(n / N)`` values (fewer when a chunk would hold fewer than
``GRAIN_SIZE``), sums each chunk and then the N partial sums (``two_pass_reduction`` in ATen's TensorIterator), so
the last bits of a PSNR or SSIM depend on N. ``total(x)`` performs that split on one thread for the count set
outside ``one_thread``, so the stored numbers are exactly those a run with N threads has always stored;
``tests/test_threads.py`` compares it with torch's own N-thread sums.
"""

from __future__ import annotations

import contextlib
import threading

import torch

GRAIN_SIZE = 32768  # at::internal::GRAIN_SIZE: below it a reduction runs on one thread
_state = threading.local()


def configured() -> int:
    """The intra-op thread count set outside any ``one_thread`` block of this thread."""
    return getattr(_state, "outer", None) or torch.get_num_threads()


@contextlib.contextmanager
def one_thread():
    """Run torch ops on this thread alone; ``configured()`` keeps reporting the count set outside."""
    saved, now = getattr(_state, "outer", None), torch.get_num_threads()
    _state.outer = configured()
    if now != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if now != 1:
            torch.set_num_threads(now)
        _state.outer = saved


def total(x: torch.Tensor) -> torch.Tensor:
    """``x.sum()`` exactly as torch computes it with ``configured()`` threads (a 0-dim tensor), computed on the
    calling thread. ``x`` must be dense (contiguous in some order of its dimensions, as every result of an element-wise
    op is): torch then sums it in memory order, and so does this."""
    n = x.numel()
    threads = configured()
    if x.device.type != "cpu" or threads == 1 or n < GRAIN_SIZE:
        return x.sum()
    flat = _memory_order(x)
    used = min(threads, -(-n // GRAIN_SIZE))
    chunk = -(-n // used)
    partial = torch.zeros(threads, dtype=x.dtype)  # one slot per thread, unused ones stay 0 as in ATen
    with one_thread():
        for i in range(used):
            if i * chunk < n:
                partial[i] = flat[i * chunk:(i + 1) * chunk].sum()
        return partial.sum()


def _memory_order(x: torch.Tensor) -> torch.Tensor:
    """A dense tensor's values as the 1-D view of its memory, which is the order TensorIterator reduces them in."""
    if x.is_contiguous():
        return x.view(-1)
    dims = sorted((st, sz) for st, sz in zip(x.stride(), x.shape) if sz != 1)
    expected = 1
    for st, sz in dims:
        if st != expected:
            raise ValueError("total() needs a dense tensor (its values one block of memory); pass x.contiguous()")
        expected *= sz
    return x.as_strided((x.numel(),), (1,))
