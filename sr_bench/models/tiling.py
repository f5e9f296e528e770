"""Tiled inference (``srbench run --tile N --tile-overlap K``): the networks a model runs through ``run_network``
on cores of ``tile x tile`` LR pixels with ``overlap`` pixels of context, the cores' outputs kept; other models tiled
around ``super_resolve`` (``super_resolve_tiled``). Where tiles are cut, channel attention's passes, each family's
overlap and the measured differences: docs/tiling.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

import torch

from sr_bench.errors import UserError


@dataclass(frozen=True)
class Tiling:
    """``tile``: core size in LR pixels; ``overlap``: context pixels on every side of a core, in LR pixels."""

    tile: int
    overlap: int

    def __post_init__(self):
        for option, value, low in (("--tile", self.tile, 1), ("--tile-overlap", self.overlap, 0)):
            if int(value) != value or value < low:
                raise UserError(f"{option} must be a whole number of pixels >= {low}, got {value}")


_ACTIVE: contextvars.ContextVar[tuple[Tiling, tuple[int, int]] | None] = contextvars.ContextVar("tiling", default=None)


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar, value):
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def tiles(tiling: Tiling | None, lr_size: tuple[int, int]):
    """``run_network`` calls inside tile their input by ``tiling`` (sizes relative to an LR of ``lr_size``)."""
    return _setting(_ACTIVE, (tiling, (int(lr_size[0]), int(lr_size[1]))) if tiling is not None else None)


def tiling_active() -> bool:
    """Whether ``run_network`` calls here are tiled (``srbench run --compile`` runs those eager)."""
    return _ACTIVE.get() is not None


def _spans(n: int, core: int, context: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, input start, input end) along one axis of length n."""
    return [(c0, min(n, c0 + core), max(0, c0 - context), min(n, c0 + core + context)) for c0 in range(0, n, core)]


class _ImageStatistics:
    """The image-wide statistics of one tiled forward (channel attention's pooled features), in call order: every
    tile runs the same network, so a tile's pooling call i is the same layer in every tile. Call i returns ``given[i]``
    (the previous pass's value) when there is one, else the tile's own, and adds the tile's core (the part whose
    features equal the whole image's) to the image-wide value of call i."""

    def __init__(self, given: list[torch.Tensor] | None):
        self.given = given
        self.sums: list[torch.Tensor] = []
        self.kinds: list[str] = []
        self.count = 0.0
        self.calls = 0
        self.core: tuple[int, int, int, int] | None = None
        self.shape: tuple[int, int] = (0, 0)
        self.aligned = True  # False when a pooled feature map could not be related to its tile's core

    def tile(self, core: tuple[int, int, int, int], shape: tuple[int, int]) -> None:
        self.core, self.shape, self.calls = core, shape, 0

    def pool(self, x: torch.Tensor, local: torch.Tensor, kind: str) -> torch.Tensor:
        i = self.calls
        self.calls += 1
        h, w = x.shape[-2], x.shape[-1]
        fy, fx = h // self.shape[0], w // self.shape[1]
        if fy < 1 or fx < 1 or h != fy * self.shape[0] or w != fx * self.shape[1]:
            self.aligned = False
            return local
        c0, c1, d0, d1 = self.core
        core = x[..., fy * c0:fy * c1, fx * d0:fx * d1].to(torch.float64)
        part = core.amax(dim=(-2, -1), keepdim=True) if kind == "max" else core.sum(dim=(-2, -1), keepdim=True)
        if i == len(self.sums):
            self.sums.append(part)
            self.kinds.append(kind)
        elif kind == "max":
            self.sums[i] = torch.maximum(self.sums[i], part)
        else:
            self.sums[i] = self.sums[i] + part
        if i == 0:
            self.count += float((c1 - c0) * (d1 - d0) * fy * fx)
        if self.given is not None and i < len(self.given):
            return self.given[i].to(local.dtype)
        return local

    def values(self) -> list[torch.Tensor]:
        return [t if k == "max" else t / self.count for t, k in zip(self.sums, self.kinds, strict=True)]


_STATISTICS: contextvars.ContextVar[_ImageStatistics | None] = contextvars.ContextVar("statistics", default=None)

# A tiled forward with channel attention runs until its output settles: at most MAX_PASSES passes, stopping when no
# output value moved by more than SETTLED times the largest output value since the pass before. float32 features
# of deep networks jitter by ~1.5e-6 of the output's range from pass to pass (summation order in the pooled means),
# so the bound sits above that and below the 1e-5 at which a uint8 SR could change (docs/tiling.md).
MAX_PASSES = 16
SETTLED = 4e-6


def image_statistic(x: torch.Tensor, local: torch.Tensor, kind: str = "mean") -> torch.Tensor:
    """A statistic pooled over the whole feature map ``x`` (``local``, computed by the caller as it always has, so
    whole-image outputs are untouched): on a tile inside ``run_network``, the whole image's value instead.
    ``kind``: 'mean' or 'max'. Networks with global pooling (channel attention) call this to tile exactly."""
    stats = _STATISTICS.get()
    return local if stats is None else stats.pool(x, local, kind)


def run_network(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, factor: int = 1) -> torch.Tensor:
    """``fn(x)`` for a network mapping (..., h, w) to (..., factor*h, factor*w): tile by tile inside ``tiles()``,
    else on the whole input. A network that pools over the whole image (``image_statistic``) runs pass after pass,
    each feeding every tile the image-wide statistics of the pass before, until the output settles (docs/tiling.md)."""
    active = _ACTIVE.get()
    if active is None:
        return fn(x)
    tiling, (lr_h, lr_w) = active
    h, w = x.shape[-2], x.shape[-1]
    r = math.sqrt(h * w / (lr_h * lr_w))  # input pixels per LR pixel (a self-ensemble pass may swap the axes)
    core = max(1, math.ceil(tiling.tile * r - 1e-9))
    context = math.ceil(tiling.overlap * r - 1e-9)
    if h <= core and w <= core:
        return fn(x)
    given, last = None, None
    for _ in range(MAX_PASSES):
        stats = _ImageStatistics(given)
        with _setting(_STATISTICS, stats):
            out = _tiled_pass(fn, x, int(factor), core, context, stats)
        if not stats.sums or not stats.aligned:
            return out
        if last is not None and (out - last).abs().max() <= SETTLED * last.abs().max().clamp(min=1e-12):
            return out
        given, last = stats.values(), out
    return out


def _tiled_pass(fn, x: torch.Tensor, f: int, core: int, context: int, stats: _ImageStatistics) -> torch.Tensor:
    h, w = x.shape[-2], x.shape[-1]
    out = None
    for y0, y1, a0, a1 in _spans(h, core, context):
        for x0, x1, b0, b1 in _spans(w, core, context):
            stats.tile((y0 - a0, y1 - a0, x0 - b0, x1 - b0), (a1 - a0, b1 - b0))
            y = fn(x[..., a0:a1, b0:b1])
            if tuple(y.shape[-2:]) != (f * (a1 - a0), f * (b1 - b0)):
                raise ValueError(f"a tile of {a1 - a0}x{b1 - b0} gave {tuple(y.shape[-2:])}, not x{f} of it")
            if out is None:
                out = y.new_empty(*y.shape[:-2], f * h, f * w)
            out[..., f * y0:f * y1, f * x0:f * x1] = y[..., f * (y0 - a0):f * (y1 - a0), f * (x0 - b0):f * (x1 - b0)]
    return out


def _aligned_spans(n: int, out: int, s: Fraction, core: int, context: int) -> list[tuple[int, int, int, int, int, int]]:
    """Along one axis: (SR start, SR end, LR input start, LR input end, SR input start, SR input end) per tile, with
    LR origins on multiples of the scale's denominator so that every SR boundary is a whole pixel."""
    q = s.denominator
    core = q * max(1, -(-core // q))
    context = q * (-(-context // q))
    spans = []
    for c0 in range(0, n, core):
        sr0 = int(c0 * s)
        if sr0 >= out:
            break
        a0, a1 = max(0, c0 - context), min(n, c0 + core + context)
        sr1 = min(out, int((c0 + core) * s)) if c0 + core < n else out
        in1 = out if a1 == n else min(out, int(a1 * s))
        spans.append((sr0, sr1, a0, a1, int(a0 * s), in1))
    return spans


def super_resolve_tiled(model, lr: torch.Tensor, scale: Fraction, size: tuple[int, int],
                        tiling: Tiling) -> torch.Tensor:
    """``model.super_resolve`` on LR tiles whose origins are multiples of the scale's denominator, for models that do
    not tile their own networks."""
    s = Fraction(scale)
    h, w = lr.shape[-2], lr.shape[-1]
    H, W = int(size[0]), int(size[1])
    rows = _aligned_spans(h, H, s, tiling.tile, tiling.overlap)
    cols = _aligned_spans(w, W, s, tiling.tile, tiling.overlap)
    if len(rows) == 1 and len(cols) == 1:
        return model.super_resolve(lr, s, (H, W))
    out = None
    for y0, y1, a0, a1, i0, i1 in rows:
        for x0, x1, b0, b1, j0, j1 in cols:
            y = model.super_resolve(lr[..., a0:a1, b0:b1], s, (i1 - i0, j1 - j0))
            if out is None:
                out = y.new_empty(*y.shape[:-2], H, W)
            out[..., y0:y1, x0:x1] = y[..., y0 - i0:y1 - i0, x0 - j0:x1 - j0]
    return out


def super_resolve(model, lr: torch.Tensor, scale: Fraction, size: tuple[int, int],
                  tiling: Tiling | None) -> torch.Tensor:
    """The model's SR of ``lr``, tiled by ``tiling`` (None: the whole image)."""
    if tiling is None:
        return model.super_resolve(lr, scale, size)
    if getattr(model, "tiles_networks", False):
        with tiles(tiling, (lr.shape[-2], lr.shape[-1])):
            return model.super_resolve(lr, scale, size)
    return super_resolve_tiled(model, lr, scale, size, tiling)


MIN_TILE = 16  # the smallest tile an out-of-memory retry tries (LR pixels)


def halved(tiling: Tiling | None, lr_size: tuple[int, int], overlap: int) -> Tiling | None:
    """The next tiling to try after running out of memory: half the current tile (the whole image: half its longer
    side), or None below ``MIN_TILE``."""
    side = tiling.tile if tiling is not None else max(int(lr_size[0]), int(lr_size[1]))
    tile = -(-side // 2)
    return Tiling(tile, overlap) if tile >= MIN_TILE and tile < side else None
