"""Scale factors as exact decimals: ``1.4`` is kept as 7/5, and every size a protocol derives from it is computed on
fractions (``476 / 1.4`` is 340.00000000000006 in floats, which moves a MATLAB ``ceil`` by one pixel; docs/protocols.md,
"Exact decimal sizes")."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from sr_bench.errors import UserError

MAX_SCALE = Fraction(64)


def _exact(text: str, fractions: bool = True) -> Fraction | None:
    """The finite number ``text`` writes as a decimal (or, with ``fractions``, as ``p/q``), exactly; else None."""
    t = text.strip()
    try:
        if fractions and "/" in t:
            num, den = t.split("/", 1)
            return Fraction(int(num), int(den))
        d = Decimal(t)
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None
    return Fraction(d) if d.is_finite() else None


def parse_scale(text: str) -> Fraction:
    """One scale from its decimal text: ``"2"``, ``"1.5"``, ``"3/2"`` (fractions for scales like 4/3)."""
    value = _exact(text)
    if value is None:
        raise UserError(f"bad scale {text!r}: write a decimal like 2, 1.5 or 3/2")
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
            start, step, stop = parse_scale(pieces[0]), _exact(pieces[2], fractions=False), _exact(pieces[1])
            if step is None or step <= 0:
                raise UserError(f"bad step {pieces[2]!r} in {part!r}: the step must be a positive decimal like 0.1")
            if stop is None:  # checked as a number first, so that 2:1:0.1 is called descending
                raise UserError(f"bad scale range {part!r}: {pieces[1].strip()!r} is not a number like 4 or 1.5")
            if stop < start:
                raise UserError(f"bad scale range {part!r}: a descending range (stop {pieces[1].strip()} is below "
                                f"start {pieces[0].strip()}); ranges go up: write start:stop:step with start <= stop")
            stop = parse_scale(pieces[1])
            n = math.floor((stop - start) / step)
            if n > 10_000:
                raise UserError(f"scale range {part!r} has {n + 1} values; use a larger step")
            last = start + n * step
            if last != stop:
                raise UserError(f"scale range {part!r} does not reach its stop: its last value is {scale_text(last)}; "
                                f"write {pieces[0].strip()}:{scale_text(last)}:{pieces[2].strip()}, "
                                f"or a step that divides {scale_text(stop - start)}")
            out.extend(start + i * step for i in range(n + 1))
        else:
            out.append(parse_scale(part))
    return list(dict.fromkeys(out))


def scale_text(s: Fraction) -> str:
    """The shortest exact decimal for a scale (``Fraction(7, 5)`` -> ``"1.4"``), else ``"p/q"``."""
    d = Decimal(s.numerator) / Decimal(s.denominator)  # rounded to 28 digits where the decimal does not terminate
    return format(d.normalize(), "f") if Fraction(d) == s else f"{s.numerator}/{s.denominator}"


def ceil_div(n: int, s: Fraction) -> int:
    return math.ceil(Fraction(n) / s)


def floor_mul(n: int, s: Fraction) -> int:
    return math.floor(n * s)


def divisible(n: int, s: Fraction) -> bool:
    """Whether n / s is a whole number (MATLAB ``mod(n, s) == 0``, but exact)."""
    return (Fraction(n) / s).denominator == 1
