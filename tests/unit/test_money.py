from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gasbill.domain.errors import InvalidAmount, UnitMismatch
from gasbill.domain.money import (
    Money,
    Price,
    Volume,
    money_from_micro,
    round_micro_to_fen,
    to_decimal,
)


@pytest.mark.parametrize("bad", [0.1, 1.0, float("nan"), True])
def test_a_float_or_bool_is_refused(bad):
    with pytest.raises(InvalidAmount):
        Money(bad)
    with pytest.raises(InvalidAmount):
        to_decimal(bad)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-inf", "abc", ""])
def test_non_finite_or_garbage_text_is_refused(bad):
    with pytest.raises(InvalidAmount):
        Volume(bad)


def test_storage_round_trips_exactly():
    assert Money("12.34").fen == 1234
    assert Money.of_fen(-5) == Money("-0.05")
    assert Volume("350.001").litres == 350_001
    assert Volume.of_litres(1) == Volume("0.001")
    assert Price("2.615").milli == 2615
    assert Price.of_milli(4230) == Price("4.23")


def test_storage_refuses_a_value_finer_than_its_unit():
    with pytest.raises(InvalidAmount, match="finer"):
        _ = Money("0.001").fen
    with pytest.raises(InvalidAmount, match="finer"):
        _ = Volume("0.0001").litres


def test_rounding_to_fen_is_half_up_by_default_and_explicit_otherwise():
    assert Money("0.005").rounded() == Money("0.01")
    assert Money("-0.005").rounded() == Money("-0.01")
    assert Money("0.125").rounded("ROUND_HALF_EVEN") == Money("0.12")
    with pytest.raises(InvalidAmount):
        Money("1").rounded("ROUND_SOMEHOW")


def test_units_do_not_mix():
    with pytest.raises(UnitMismatch):
        Money(1) + Volume(1)  # type: ignore[operator]
    with pytest.raises(UnitMismatch):
        _ = Money(1) < Price(1)  # type: ignore[operator]
    assert Money(1) != Volume(1)


def test_price_times_volume_is_exact_money():
    assert Price("2.61").cost(Volume("0.001")) == Money("0.00261")
    assert Price("4.23").cost(Volume("230")) == Money("972.90")


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integer_rounding_agrees_with_decimal_rounding(micro):
    for mode in ("ROUND_HALF_UP", "ROUND_HALF_EVEN", "ROUND_DOWN", "ROUND_CEILING"):
        expected = money_from_micro(micro).rounded(mode).fen
        assert round_micro_to_fen(micro, mode) == expected


@given(st.integers(min_value=-(2**62), max_value=2**62))
def test_money_storage_round_trip(fen):
    assert Money.of_fen(fen).fen == fen
    assert Money.of_fen(fen).value == Decimal(fen) / 100
