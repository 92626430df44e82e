"""Reconciliation's pure rules: the observation compared, agreement, and the likely cause."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from gasbill.domain.money import Money, Price
from gasbill.domain.reconciliation import (
    AccountLine,
    BalancePoint,
    Cause,
    Check,
    CounterPoint,
    PricePoint,
    Tolerance,
    balance_point,
    check_balance,
    check_counters,
    check_price,
    price_difference,
    totals,
)

T = datetime(2025, 3, 1, tzinfo=UTC)
fen = st.integers(min_value=-10_000_000, max_value=10_000_000)
milli = st.integers(min_value=-10_000_000, max_value=10_000_000)


def m(text: str) -> Money:
    return Money(text)


def point(meter: str, ledger: str, *, in_flight: str = "0", at: datetime = T) -> BalancePoint:
    return BalancePoint(at, "reading", m(meter), m(ledger), m(in_flight))


def prices(*texts: str) -> tuple[Price, ...]:
    return tuple(Price(t) for t in texts)


# -- balance ------------------------------------------------------------------------------


def test_a_balance_within_a_fen_agrees_and_has_no_cause():
    found = check_balance(point("12.345", "12.34"))
    assert found.agrees and found.cause is None
    assert found.difference == m("0.005")


@given(meter=milli, ledger=fen)
def test_a_balance_agrees_exactly_when_within_tolerance(meter, ledger):
    found = check_balance(point(str(Decimal(meter).scaleb(-3)), str(Decimal(ledger).scaleb(-2))))
    difference = Money(Decimal(meter).scaleb(-3)) - Money.of_fen(ledger)
    assert found.difference == difference
    assert found.agrees == (abs(difference) <= Money("0.01"))
    assert (found.cause is None) == found.agrees


@given(meter=milli, ledger=fen)
def test_a_wider_tolerance_never_turns_an_agreement_into_a_difference(meter, ledger):
    p = point(str(Decimal(meter).scaleb(-3)), str(Decimal(ledger).scaleb(-2)))
    narrow = check_balance(p)
    wide = check_balance(p, tolerance=Tolerance(balance=Money("1.00"), rounding=Money("1.00")))
    assert wide.agrees or not narrow.agrees


def test_a_small_difference_is_the_meters_rounding():
    found = check_balance(point("10.05", "10.00"))
    assert not found.agrees and found.cause is Cause.ROUNDING_ON_METER


def test_a_point_with_a_top_up_in_flight_is_put_down_to_it():
    found = check_balance(point("60.00", "10.00", in_flight="50.00"))
    assert found.cause is Cause.TOP_UP_IN_FLIGHT
    assert "50.000 in flight" in found.note


def test_part_of_an_in_flight_top_up_already_spent_on_the_meter_is_still_the_top_up():
    assert check_balance(point("42.26", "0", in_flight="100")).cause is Cause.TOP_UP_IN_FLIGHT


def test_less_on_the_meter_than_the_books_is_not_explained_by_a_top_up_in_flight():
    found = check_balance(point("20.32", "21.58", in_flight="100"), tariff_behind=True)
    assert found.cause is Cause.TARIFF_NOT_ON_METER


def test_an_in_flight_point_nothing_else_explains_is_put_down_to_the_top_up():
    assert check_balance(point("5", "21.58", in_flight="100")).cause is Cause.TOP_UP_IN_FLIGHT


@given(meter=fen, ledger=fen, flight=st.integers(1, 10_000_000))
def test_a_point_in_flight_is_never_called_unexplained(meter, ledger, flight):
    p = BalancePoint(T, "reading", Money.of_fen(meter), Money.of_fen(ledger), Money.of_fen(flight))
    assert check_balance(p).cause is not Cause.UNEXPLAINED


def test_a_tariff_behind_on_the_meter_explains_a_larger_difference():
    found = check_balance(point("8.00", "10.00"), tariff_behind=True, missing_readings=3)
    assert found.cause is Cause.TARIFF_NOT_ON_METER


def test_missing_readings_explain_a_larger_difference():
    found = check_balance(point("8.00", "10.00"), missing_readings=2)
    assert found.cause is Cause.MISSING_READINGS


def test_a_larger_difference_with_nothing_to_explain_it_is_unexplained():
    assert check_balance(point("8.00", "10.00")).cause is Cause.UNEXPLAINED


def test_no_reading_at_all_is_missing_readings():
    found = check_balance(None)
    assert not found.agrees and found.cause is Cause.MISSING_READINGS
    assert found.difference is None


def test_the_latest_comparable_point_is_chosen_over_a_later_one_in_flight():
    early = point("10.00", "10.00", at=T)
    late = point("60.00", "10.00", in_flight="50.00", at=T + timedelta(days=1))
    assert balance_point([late, early]) is early
    assert balance_point([late]) is late
    assert balance_point([]) is None


@given(st.lists(st.tuples(st.integers(0, 100), st.booleans()), min_size=1, max_size=20))
def test_the_chosen_point_is_comparable_whenever_one_is(specs):
    points = [
        point("1", "1", in_flight="5" if flight else "0", at=T + timedelta(hours=h))
        for h, flight in specs
    ]
    chosen = balance_point(points)
    assert chosen is not None
    pool = [p for p in points if p.comparable] or points
    assert chosen.comparable == any(p.comparable for p in points)
    assert chosen.at == max(p.at for p in pool)


# -- counters --------------------------------------------------------------------------------


def counters(times, total, ledger_times, ledger_total, flight_times=0, flight_total="0"):
    return CounterPoint(
        T, times, m(total), ledger_times, m(ledger_total), flight_times, m(flight_total)
    )


def test_equal_counters_agree():
    found = check_counters(counters(3, "150.00", 3, "150.00"))
    assert found.agrees and found.cause is None


def test_one_more_top_up_on_the_meter_while_one_is_in_flight_is_put_down_to_it():
    found = check_counters(counters(4, "200.00", 3, "150.00", 1, "50.00"))
    assert found.cause is Cause.TOP_UP_IN_FLIGHT
    assert found.difference == m("50.00")


def test_a_top_up_the_books_never_held_is_unexplained():
    assert check_counters(counters(4, "200.00", 3, "150.00")).cause is Cause.UNEXPLAINED


def test_same_count_and_a_sub_fen_total_is_rounding():
    found = check_counters(counters(3, "150.005", 3, "149.99"))
    assert found.cause is Cause.ROUNDING_ON_METER


def test_no_getchargestate_is_missing():
    assert check_counters(None).cause is Cause.MISSING_READINGS


# -- price --------------------------------------------------------------------------------


def test_a_getprice_ladder_equal_to_the_tariff_agrees():
    ladder = prices("2.61", "2.61", "3.83", "3.83", "3.83")
    found = check_price(PricePoint(T, "getprice", ladder, ladder))
    assert found.agrees and found.difference == Price("0")


def test_a_curr_price_agrees_when_it_is_one_of_the_tariffs_prices():
    found = check_price(PricePoint(T, "curr_price", prices("3.83"), prices("2.61", "3.83")))
    assert found.agrees


def test_an_old_price_while_the_change_is_not_on_the_meter():
    found = check_price(
        PricePoint(T, "curr_price", prices("2.61"), prices("2.80", "3.90"), tariff_behind=True)
    )
    assert found.cause is Cause.TARIFF_NOT_ON_METER
    assert found.difference == Price("-0.19")


def test_a_price_a_fraction_of_a_fen_off_is_the_meters_rounding():
    found = check_price(PricePoint(T, "getprice", prices("2.62"), prices("2.615")))
    assert found.cause is Cause.ROUNDING_ON_METER


def test_a_wrong_price_with_the_tariff_confirmed_is_unexplained():
    found = check_price(PricePoint(T, "getprice", prices("5.00"), prices("2.61")))
    assert found.cause is Cause.UNEXPLAINED


@given(st.lists(st.integers(0, 99_999), min_size=1, max_size=5), st.integers(-500, 500))
def test_a_ladder_moved_by_a_constant_differs_by_that_constant(milli_prices, shift):
    tariff = tuple(Price.of_milli(p) for p in milli_prices)
    meter = tuple(Price.of_milli(p + shift) for p in milli_prices)
    if len(tariff) > 1:
        assert price_difference(meter, tariff) == Price.of_milli(shift)


# -- totals --------------------------------------------------------------------------------


def test_totals_count_accounts_by_cause_and_sum_the_differences():
    agreeing = AccountLine(1, "A1", "1001", "m1", (check_balance(point("1", "1")),))
    rounding = AccountLine(2, "A2", "1001", "m2", (check_balance(point("1.05", "1.00")),))
    two = AccountLine(
        3,
        "A3",
        "1001",
        "m3",
        (check_balance(point("7.00", "10.00")), check_counters(None)),
    )
    found = totals([agreeing, rounding, two])
    assert (found.accounts, found.agreeing, found.differing) == (3, 1, 2)
    assert found.by_cause["rounding_on_meter"] == 1
    assert found.by_cause["unexplained"] == 1
    assert found.by_cause["missing_readings"] == 1
    assert found.by_cause["top_up_in_flight"] == 0
    assert found.by_check == {
        "balance": 2,
        "counters": 1,
        "price": 0,
        "ledger": 0,
        "valve": 0,
        "replacement": 0,
    }
    assert found.balance_difference == m("-2.95")
    assert found.balance_difference_abs == m("3.05")
    assert two.finding(Check.COUNTERS) is not None and two.causes == (
        Cause.UNEXPLAINED,
        Cause.MISSING_READINGS,
    )
