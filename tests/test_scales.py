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
    ("2,,3", "empty item"), ("1.5:4", "start:stop:step"), ("1.5:4:0", "positive"), ("4:2:0.5", "descending range"),
    ("2:1:0.1", "descending range"),
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


def test_a_range_that_misses_its_stop_names_its_last_value_and_both_fixes():
    with pytest.raises(UserError) as e:
        parse_scales("1.5:4:0.07")
    text = str(e.value)
    assert "\n" not in text and "its last value is 3.95" in text
    fix = text.split("write ", 1)[1].split(",", 1)[0]
    assert fix == "1.5:3.95:0.07" and parse_scales(fix)[-1] == Fraction("3.95")  # the first fix parses, and ends there
    assert "a step that divides 2.5" in text
    for spec in ("1.5:4:0.1", "1.5:4:0.25", "2:2:0.5", "1.1:1.9:0.2"):  # steps that land on the stop stay quiet
        got = parse_scales(spec)
        assert got[-1] == Fraction(spec.split(":")[1]) and all(b - a == Fraction(spec.split(":")[2])
                                                               for a, b in zip(got, got[1:], strict=False))


def test_cli_exit_2_with_one_line_for_a_range_that_misses_its_stop(tmp_path):
    from click.testing import CliRunner

    from sr_bench.cli import cli

    r = CliRunner().invoke(cli, ["run", "--models", "bicubic", "--datasets", "demo", "--scales", "1.5:4:0.07",
                                 "--out", str(tmp_path / "r"), "--no-progress"])
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "1.5:3.95:0.07" in r.output, r.output
    assert not (tmp_path / "r").exists()
