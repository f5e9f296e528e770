"""Tiled inference (``srbench run --tile N --tile-overlap K``): a model's network run on overlapping tiles.

Where the tiles are cut. Built-in adapters pass every image-to-image network they run through ``run_network(fn, x,
factor)`` (a network whose output is ``factor`` times its input, ``factor`` an integer: the EDSR-style networks at
their integer scale, the LR feature extractors of Meta-SR and LIIF at 1, the networks on a bicubic-upscaled input at
1). Everything that depends on output coordinates or on the requested size runs on the whole image, outside
``run_network``: Meta-SR's meta-upscale, LIIF's decoder, ASDN's LFR level blending and recursive passes, the MATLAB
resizes of the decimal-scale strategies, the colour steps of the Y-channel pipeline. So tiles are always cut at an
integer ratio, whatever the scale or the protocol's SR size, and nothing about the output size changes.

Seams are exact: the image is split into cores of ``tile x tile`` input pixels; each core is run with ``overlap``
pixels of context on every side that has image there (the image border keeps the network's own padding), and only
the core's part of the output is kept. An output pixel therefore equals the whole-image one whenever the overlap
covers the network's receptive field. Networks with global pooling (the channel attention of RCAN, CSFM, ASDN,
FSDN) pool through ``image_statistic`` and run in passes that feed every tile the image-wide statistics of the pass
before (``run_network``). docs/tiling.md gives each family's recommended overlap (``Upscaler.tile_overlap``) and the
differences and passes measured with it.

Sizes are in LR pixels. A network whose input is r times the LR (SRCNN, VDSR, ASDN's levels, ``bicubic-pre``; later
passes of ``recursive-x2``) gets cores of ``ceil(r * tile)`` and ``ceil(r * overlap)`` context pixels.

Models that do not route their networks here (plugins with ``tiles_networks = False``) are tiled around
``super_resolve`` itself by ``super_resolve_tiled``: LR tiles whose origins are multiples of the scale's denominator
q (s = p/q), so that each tile's output starts on an exact SR pixel (origin * s), each tile asked for its exact
share of the requested size. That is exact for a model whose SR pixel i depends on LR pixels near (i + 0.5)/s - 0.5
through the scale alone, with a smaller requested size being the top-left part of a larger one (MATLAB imresize with
a scale; a network after such a resize), and approximate otherwise (a model resizing to the requested size).
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
        if int(self.tile) != self.tile or self.tile < 1:
            raise UserError(f"--tile must be a whole number of pixels >= 1, got {self.tile}")
        if int(self.overlap) != self.overlap or self.overlap < 0:
            raise UserError(f"--tile-overlap must be a whole number of pixels >= 0, got {self.overlap}")

    def text(self) -> str:
        return f"{self.tile}+{self.overlap}"


_ACTIVE: contextvars.ContextVar[tuple[Tiling, tuple[int, int]] | None] = contextvars.ContextVar("tiling", default=None)


@contextlib.contextmanager
def tiles(tiling: Tiling | None, lr_size: tuple[int, int]):
    """``run_network`` calls inside tile their input by ``tiling`` (sizes relative to an LR of ``lr_size``)."""
    token = _ACTIVE.set((tiling, (int(lr_size[0]), int(lr_size[1]))) if tiling is not None else None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def tiling_active() -> bool:
    """Whether ``run_network`` calls here are tiled (``srbench run --compile`` runs those eager)."""
    return _ACTIVE.get() is not None


def _spans(n: int, core: int, context: int) -> list[tuple[int, int, int, int]]:
    """(core start, core end, input start, input end) along one axis of length n."""
    return [(c0, min(n, c0 + core), max(0, c0 - context), min(n, c0 + core + context)) for c0 in range(0, n, core)]


class _ImageStatistics:
    """The image-wide statistics of one tiled forward (channel attention's pooled features), in call order.

    Each tile's pooling calls are numbered in order (every tile runs the same network, so call i is the same layer in
    every tile); call i returns ``given[i]`` (the previous pass's image-wide value) when there is one, else the tile's
    own statistic, and adds the tile's core to the image-wide value of call i. Only the core counts: it is the part
    of a tile whose features equal the whole image's."""

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
    else on the whole input.

    A network that pools over the whole image (``image_statistic``) is run pass after pass: each pass feeds every
    tile the image-wide statistics gathered from the tiles' cores in the pass before, until they stop changing
    (``SETTLED``); the first pass uses each tile's own. Statistic i is exact in pass i + 1 at the latest, and in
    practice two to four passes settle every one (docs/tiling.md)."""
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
        token = _STATISTICS.set(stats)
        try:
            out = _tiled_pass(fn, x, int(factor), core, context, stats)
        finally:
            _STATISTICS.reset(token)
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
    """``model.super_resolve`` on LR tiles aligned to the scale (see the module docstring), for models that do not
    tile their own networks."""
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
