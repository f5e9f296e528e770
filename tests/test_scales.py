from __future__ import annotations

from fractions import Fraction

import pytest

from sr_bench.errors import UserError
from sr_bench.scales import ceil_div, divisible, floor_mul, parse_scales, scale_text


def test_range_is_inclusive_and_exact():
    s = parse_scales("1.5:4:0.1")
    assert len(s) == 26
    assert s[0] == Fraction(3, 2) and s[-1] == 4
    assert [scale_text(x) for x in s[:3]] == ["1.5", "1.6", "1.7"]
    assert all(x.denominator in (1, 2, 5, 10) for x in s)  # no 2.0000000004


def test_mixtures_and_duplicates():
    assert parse_scales("1.1:1.3:0.1,3,4,1.2") == [Fraction(11, 10), Fraction(6, 5), Fraction(13, 10), 3, 4]
    assert parse_scales("4/3") == [Fraction(4, 3)]
    assert scale_text(Fraction(4, 3)) == "4/3"


@pytest.mark.parametrize("spec,msg", [
    ("1", "must be > 1"), ("0.5", "must be > 1"), ("65", "maximum"), ("abc", "bad scale"),
    ("2,,3", "empty item"), ("1.5:4", "start:stop:step"), ("1.5:4:0", "positive"), ("4:2:0.5", "below start"),
    ("", "empty"), ("nan", "bad scale"), ("inf", "bad scale"),
])
def test_bad_specs(spec, msg):
    with pytest.raises(UserError, match=msg):
        parse_scales(spec)


def test_exact_sizes_where_floats_slip():
    s14, s23 = Fraction(7, 5), Fraction(23, 10)
    # 476 / 1.4 and 276 / 2.3 are whole numbers; their float remainders are not 0
    assert divisible(476, s14) and 476 % 1.4 != 0
    assert divisible(276, s23) and 276 % 2.3 != 0
    assert ceil_div(476, s14) == 340 and ceil_div(276, s23) == 120
    assert floor_mul(340, s14) == 476
