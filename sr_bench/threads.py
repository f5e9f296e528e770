"""Sums with the numbers of the configured intra-op thread count, computed on the calling thread alone (``total``:
how torch splits a sum over N threads, and why waking them costs more here, is in docs/native.md); ``one_thread()``
runs torch ops on the calling thread."""

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
    if not is_dense(x):
        raise ValueError("total() needs a dense tensor (its values one block of memory); pass x.contiguous()")
    flat = x.as_strided((n,), (1,))  # its memory, in the order TensorIterator reduces it
    used = min(threads, -(-n // GRAIN_SIZE))
    chunk = -(-n // used)
    partial = torch.zeros(threads, dtype=x.dtype)  # one slot per thread, unused ones stay 0 as in ATen
    with one_thread():
        for i in range(used):
            if i * chunk < n:
                partial[i] = flat[i * chunk:(i + 1) * chunk].sum()
        return partial.sum()


def is_dense(x: torch.Tensor) -> bool:
    """Whether ``x``'s values fill one block of memory, in some order of its dimensions (as every result of an
    element-wise op does): then that block, read in memory order, is all of ``x``."""
    expected = 1
    for st, sz in sorted((st, sz) for st, sz in zip(x.stride(), x.shape, strict=True) if sz != 1):
        if st != expected:
            return False
        expected *= sz
    return True

