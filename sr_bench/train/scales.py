"""Which scales a training run draws from: the ``--scales`` text, or the model's own trained range.

Scales stay exact fractions, as everywhere in sr_bench: the HR patch side ``floor(patch * s)`` and the LR side
``ceil(hr / s)`` are computed on them, so a scale of 1.4 never turns into 1.3999999 and moves a patch by a pixel.
"""

from __future__ import annotations

import math
from fractions import Fraction

from sr_bench.errors import UserError
from sr_bench.models.interface import ScaleSupport
from sr_bench.scales import parse_scale, parse_scales, scale_text

# A continuous range LOW:HIGH is drawn on this grid: fine enough that neighbouring scales give HR patches one pixel
# apart at the default patch of 48, coarse enough that the MATLAB resize weights (cached per scale) are reused.
GRID = Fraction(1, 100)
# Default top of a continuous range: the x1..x4 range Meta-SR and LIIF train on.
DEFAULT_HIGH = Fraction(4)


def grid_range(low: Fraction, high: Fraction) -> list[Fraction]:
    """Every multiple of ``GRID`` in [low, high] that is > 1 (scale 1 would be no super-resolution)."""
    first, last = math.ceil(low / GRID), math.floor(high / GRID)
    return [k * GRID for k in range(first, last + 1) if k * GRID > 1]


def _bound(text: str, part: str) -> Fraction:
    # LOW may be exactly 1, meaning "just above 1" (1:4 reads as LIIF's range); parse_scale refuses 1 on its own.
    if text.strip() in ("1", "1.0"):
        return Fraction(1)
    if not text.strip():
        raise UserError(f"bad scale range {part!r}: write LOW:HIGH, e.g. 1:4, or a list such as 2,3,4")
    return parse_scale(text)


def parse_train_scales(text: str) -> list[Fraction]:
    """``2`` / ``2,3,4`` / ``1.1:4:0.1`` as in ``srbench run``, plus ``LOW:HIGH`` for a continuous range drawn on the
    0.01 grid. Sorted, without duplicates."""
    if not text or not text.strip():
        raise UserError("empty --scales: give e.g. --scale 2, or a range such as --scales 1:4")
    out: set[Fraction] = set()
    for part in (p.strip() for p in text.split(",")):
        if part.count(":") == 1:
            lo, hi = part.split(":")
            low, high = _bound(lo, part), _bound(hi, part)
            if high <= 1 or high < low:
                raise UserError(f"bad scale range {part!r}: HIGH must be > 1 and >= LOW, e.g. 1:4")
            values = grid_range(low, high)
            if not values:
                raise UserError(f"scale range {part!r} holds no scale on the {scale_text(GRID)} grid above 1")
            out.update(values)
        else:
            out.update(parse_scales(part))
    return sorted(out)


def default_range(support: ScaleSupport) -> list[Fraction]:
    """A continuous model's trained range, capped at x4."""
    return grid_range(support.low, min(support.high, DEFAULT_HIGH))


def describe(scales: list[Fraction]) -> str:
    """``2``, ``2,4`` or ``1.01:4 (300 scales)``: short enough for a progress line or an error."""
    if len(scales) <= 4:
        return ",".join(scale_text(s) for s in scales)
    return f"{scale_text(scales[0])}:{scale_text(scales[-1])} ({len(scales)} scales)"
