"""``x.contiguous()`` for a transposed float64 CPU tensor, copied in tiles (``native/layout.c``): the same values in
the same (contiguous) layout, read a cache line at a time instead of an element at a time."""

from __future__ import annotations

import ctypes

import torch

from sr_bench import native
from sr_bench.threads import configured

MIN_PART = 1 << 16  # values below which a second thread costs more than it saves
_TILE = 16  # as in layout.c
_LINE = 8  # float64 values per 64-byte cache line


def _kernel():
    p, n = ctypes.c_void_p, ctypes.c_long
    return native.function("layout", "srb_copy_tiled", [p, n, n, n, n, p, n, n, n, n, n, n])


def contiguous(x: torch.Tensor) -> torch.Tensor | None:
    """A contiguous copy of ``x``, or None when the tiled copy has nothing to add (``x`` already contiguous, or its
    last axis already the one it is contiguous along) or does not apply (not CPU float64, more than three axes
    longer than 1, autograd watching, no kernel); then ``x.contiguous()`` is the answer."""
    if (x.device.type != "cpu" or x.dtype != torch.float64 or x.is_contiguous() or x.numel() < MIN_PART
            or (x.requires_grad and torch.is_grad_enabled())):
        return None
    dims = [(n, st) for n, st in zip(x.shape, x.stride()) if n != 1]
    if len(dims) > 3:
        return None
    while len(dims) < 3:
        dims.insert(0, (1, 0))
    (n0, s0), (n1, s1), (n2, s2) = dims
    outer = [s for n, s in dims[:2] if n > 1]
    if not outer or s2 < min(outer) or s2 < _LINE:
        return None  # each cache line of the source serves a row already: torch copies that at memory speed
    fn = _kernel()
    if fn is None:
        return None
    out = torch.empty(x.shape, dtype=torch.float64)
    # d: the axis the source is contiguous along (walked in tiles with the destination's last axis); e: the other
    if n0 > 1 and (n1 == 1 or s0 < s1):
        (nd, sd, od), (ne, se, oe) = (n0, s0, n1 * n2), (n1, s1, n2)
    else:
        (nd, sd, od), (ne, se, oe) = (n1, s1, n2), (n0, s0, n1 * n2)
    src, dst = x.data_ptr(), out.data_ptr()
    threads = configured()
    if ne >= 2 * threads:
        native.split(ne, max(1, MIN_PART // (nd * n2)),
                     lambda e0, e1: fn(src, sd, se, s2, n2, dst, od, oe, e0, e1, 0, nd), threads)
    else:
        tiles = -(-nd // _TILE)
        native.split(tiles, max(1, MIN_PART // (_TILE * n2 * ne)),
                     lambda t0, t1: fn(src, sd, se, s2, n2, dst, od, oe, 0, ne, t0 * _TILE, min(nd, t1 * _TILE)),
                     threads)
    return out
