"""Scale factors as exact decimals.

A scale is written as a decimal (``1.4``) and kept as the exact fraction it denotes (7/5). Every size a protocol
derives from it (divisibility, ceil(h/s), floor(s*h)) is computed on fractions, never on floating-point products:
``476 / 1.4`` is 340.00000000000006 in floats, which moves a MATLAB ``ceil`` by one pixel.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from sr_bench.errors import UserError

MAX_SCALE = Fraction(64)


def parse_scale(text: str) -> Fraction:
    """One scale from its decimal text: ``"2"``, ``"1.5"``, ``"3/2"`` (fractions for scales like 4/3)."""
    t = text.strip()
    try:
        if "/" in t:
            num, den = t.split("/", 1)
            value = Fraction(int(num), int(den))
        else:
            d = Decimal(t)
            if not d.is_finite():
                raise InvalidOperation
            value = Fraction(d)
    except (InvalidOperation, ValueError, ZeroDivisionError):
        raise UserError(f"bad scale {text!r}: write a decimal like 2, 1.5 or 3/2") from None
    if value <= 1:
        raise UserError(f"scale {text!r} must be > 1 (super-resolution upscales); use e.g. 1.1")
    if value > MAX_SCALE:
        raise UserError(f"scale {text!r} is above the maximum {MAX_SCALE}; use a scale <= 64")
    return value


def parse_scales(spec: str) -> list[Fraction]:
    """A comma-separated mix of scales and inclusive ranges ``start:stop:step``.

    ``"2,3,4"``; ``"1.5:4:0.1"`` gives 26 values 1.5 ... 4.0 (inclusive, exact); ``"1.1:2:0.1,3,4"`` mixes both.
    A range whose step does not land on its stop (``1.5:4:0.07`` ends at 3.95) is an error naming its last value,
    rather than a grid that silently stops short.
    Duplicates are dropped; the order of first appearance is kept.
    """
    if not spec or not spec.strip():
        raise UserError("empty --scales: give e.g. 2,3,4 or 1.5:4:0.1")
    out: list[Fraction] = []
    for part in spec.split(","):
        part = part.strip()
        if not part:
            raise UserError(f"bad --scales {spec!r}: empty item between commas")
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) != 3:
                raise UserError(f"bad scale range {part!r}: write start:stop:step, e.g. 1.5:4:0.1")
            start = parse_scale(pieces[0])
            step = _parse_step(pieces[2], part)
            stop = _parse_number(pieces[1], part)
            if stop < start:
                raise UserError(f"bad scale range {part!r}: a descending range (stop {pieces[1].strip()} is below "
                                f"start {pieces[0].strip()}); ranges go up: write start:stop:step with start <= stop")
            stop = parse_scale(pieces[1])
            n = math.floor((stop - start) / step)
            if n > 10_000:
                raise UserError(f"scale range {part!r} has {n + 1} values; use a larger step")
            last = start + n * step
            if last != stop:
                raise UserError(f"scale range {part!r} does not reach its stop: its last value is "
                                f"{scale_text(last)}; "
                                f"write {pieces[0].strip()}:{scale_text(last)}:{pieces[2].strip()}, "
                                f"or a step that divides {scale_text(stop - start)}")
            out.extend(start + i * step for i in range(n + 1))
        else:
            out.append(parse_scale(part))
    seen: set[Fraction] = set()
    return [s for s in out if not (s in seen or seen.add(s))]


def _parse_number(text: str, part: str) -> Fraction:
    """A range end as a number, before it is checked as a scale (so that 2:1:0.1 is called descending)."""
    try:
        return Fraction(text.strip()) if "/" in text else Fraction(Decimal(text.strip()))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        raise UserError(f"bad scale range {part!r}: {text.strip()!r} is not a number like 4 or 1.5") from None


def _parse_step(text: str, part: str) -> Fraction:
    try:
        d = Decimal(text.strip())
        if not d.is_finite() or d <= 0:
            raise InvalidOperation
    except InvalidOperation:
        raise UserError(f"bad step {text!r} in {part!r}: the step must be a positive decimal like 0.1") from None
    return Fraction(d)


def scale_text(s: Fraction) -> str:
    """The shortest exact decimal for a scale (``Fraction(7, 5)`` -> ``"1.4"``), else ``"p/q"``."""
    if s.denominator == 1:
        return str(s.numerator)
    den = s.denominator
    # terminating decimal iff the denominator has no prime factors besides 2 and 5
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return f"{s.numerator}/{s.denominator}"
    d = Decimal(s.numerator) / Decimal(s.denominator)
    return format(d.normalize(), "f")


def is_integer(s: Fraction) -> bool:
    return s.denominator == 1


def ceil_div(n: int, s: Fraction) -> int:
    """ceil(n / s), exactly."""
    return math.ceil(Fraction(n) / s)


def floor_mul(n: int, s: Fraction) -> int:
    """floor(n * s), exactly."""
    return math.floor(n * s)


def divisible(n: int, s: Fraction) -> bool:
    """Whether n / s is a whole number (MATLAB ``mod(n, s) == 0``, but exact)."""
    return (Fraction(n) / s).denominator == 1
