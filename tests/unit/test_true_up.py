"""The tariff as the meter applied it, and the price-change true-up: examples and properties."""

from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.errors import TariffError
from gasbill.domain.money import Price, Volume
from gasbill.domain.price_changes import ladder_for, price_changes
from gasbill.domain.rating import FrozenReading, Rater, RatingContext
from gasbill.domain.true_up import (
    as_of,
    divergence,
    meter_tariff,
    true_up,
    true_up_start,
    with_opening,
)
from tests.conftest import ROOT
from tests.factories import ZONE, at

CATALOG = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
RISE = CATALOG.get("price-change-example")  # 3.00/3.60/4.50 → 3.20/3.84/4.80 on 2025-07-01
HEATING = CATALOG.get("heating-season-example")
OLD, NEW = "2025-H1", "2025-07 increase"
CHANGE = at(2025, 7, 1)
CONTEXT = RatingContext(persons=3, opened_on=date(2025, 1, 1), whole_m3=True)
CYCLE = "2025-01-01"


def series(first: date, litres_per_day: list[int], start: int = 0) -> list[FrozenReading]:
    register = start
    out = [FrozenReading(at(first.year, first.month, first.day), register, register)]
    for offset, used in enumerate(litres_per_day, start=1):
        register += used
        day = first + timedelta(days=offset)
        out.append(FrozenReading(at(day.year, day.month, day.day), register, register))
    return out


def both(readings, confirmed, tariff=RISE):
    official = Rater(tariff).rate(readings, CONTEXT)
    metered = Rater(meter_tariff(tariff, confirmed)).rate(readings, CONTEXT)
    return official, metered


def fen(amount: Decimal) -> int:
    return int((amount * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cumulative(costs: list[Decimal]) -> list[int]:
    """What each day is charged when the cycle's running cost is rounded (DESIGN §2)."""
    out, total, charged = [], Decimal(0), 0
    for cost in costs:
        total += cost
        out.append(fen(total) - charged)
        charged = fen(total)
    return out


# -- golden examples -------------------------------------------------------------------


def test_a_rise_confirmed_a_day_late_is_that_days_usage_at_the_price_difference_per_tier():
    # Jun 29: 299.5 m³; Jul 1 crosses 300 m³: 0.5 in tier 1, 0.501 in tier 2; Jul 2: 0.781
    readings = series(date(2025, 6, 29), [299_500, 0, 1_001, 781])
    official, metered = both(readings, {OLD: at(2025, 1, 1), NEW: at(2025, 7, 2)})
    d = Decimal
    new = cumulative([d("299.5") * 3, d(0), d("0.5") * d("3.20") + d("0.501") * d("3.84"),
                      d("0.781") * d("3.84")])  # fmt: skip
    old = cumulative([d("299.5") * 3, d(0), d("0.5") * d("3.00") + d("0.501") * d("3.60"),
                      d("0.781") * d("3.84")])  # fmt: skip
    expected = {
        (CYCLE, date(2025, 6, 29) + timedelta(days=k)): n - o
        for k, (n, o) in enumerate(zip(new, old, strict=True))
        if n != o
    }
    assert expected == {(CYCLE, date(2025, 7, 1)): 22}  # 0.5 × 0.20 + 0.501 × 0.24, to the fen
    assert true_up(official, metered) == expected
    assert official.total_fen - metered.total_fen == 22


def test_a_change_never_confirmed_is_trued_up_for_the_whole_period():
    use = [1_000 + 37 * k for k in range(20)]
    readings = series(date(2025, 6, 21), use)
    official, metered = both(readings, {OLD: at(2025, 1, 1)})
    result = true_up(official, metered)
    assert min(day for _, day in result) == date(2025, 7, 1)
    assert all(amount > 0 for amount in result.values())
    assert {day for _, day in result} == {date(2025, 7, 1) + timedelta(days=k) for k in range(10)}
    assert sum(result.values()) == official.total_fen - metered.total_fen
    litres_after = sum(use[10:])
    assert abs(sum(result.values()) - litres_after * 20 // 1000) <= 1  # 0.20 a m³, tier 1


def test_a_change_confirmed_on_time_needs_no_true_up():
    readings = series(date(2025, 6, 21), [1_234] * 20)
    official, metered = both(readings, {OLD: at(2025, 1, 1), NEW: CHANGE})
    assert true_up(official, metered) == {}
    assert official.amounts_by_day() == metered.amounts_by_day()


def test_a_change_applied_early_is_refunded():
    readings = series(date(2025, 6, 21), [2_000] * 20)
    official, metered = both(readings, {OLD: at(2025, 1, 1), NEW: at(2025, 6, 30, 12)})
    assert true_up(official, metered) == {(CYCLE, date(2025, 6, 30)): -20}  # 1 m³ × 0.20


def test_the_meter_tariff_holds_each_ladder_from_its_confirmation_without_seasons():
    confirmed = {"2025": at(2025, 1, 1), "2025 base 2025-04": at(2025, 4, 3, 9)}
    metered = meter_tariff(HEATING, confirmed)
    assert [(v.label, v.effective_from, v.seasons) for v in metered.versions] == [
        ("2025", at(2025, 1, 1), ()),
        ("2025 base 2025-04", at(2025, 4, 3, 9), ()),
    ]
    assert metered.versions[0].prices == tuple(Price(p) for p in ("2.80", "3.36", "4.20"))
    assert metered.versions[1].prices == tuple(Price(p) for p in ("2.50", "3.00", "3.75"))
    with pytest.raises(TariffError):
        meter_tariff(HEATING, {})


def test_season_changes_are_price_changes_with_stable_labels():
    changes = price_changes(HEATING, at(2026, 12, 31))
    assert [(c.label, c.at) for c in changes] == [
        ("2025", at(2025, 1, 1)),
        ("2025 base 2025-04", at(2025, 4, 1)),
        ("2025 heating 2025-11", at(2025, 11, 1)),
        ("2025 base 2026-04", at(2026, 4, 1)),
        ("2025 heating 2026-11", at(2026, 11, 1)),
    ]


def test_the_ladder_of_a_change_for_one_meter():
    change = price_changes(RISE, CHANGE)[-1]
    ladder = ladder_for(RISE, change, 3, date(2025, 4, 1))  # opened with 275 of 365 days left
    assert ladder.prices == tuple(Price(p) for p in ("3.20", "3.84", "4.80", "4.80", "4.80"))
    assert ladder.ladders == tuple(Volume(v) for v in ("226", "452", "452", "452"))
    assert (ladder.cycle_start, ladder.cycle_months) == (date(2025, 1, 1), 12)


def test_the_opening_ladder_and_divergences():
    held = with_opening(RISE, {}, date(2025, 3, 5))
    assert held == {OLD: at(2025, 1, 1)}
    now = at(2025, 7, 20)
    assert divergence(RISE, held, now) == [(CHANGE, now)]
    late = {**held, NEW: at(2025, 7, 3, 10)}
    assert divergence(RISE, late, now) == [(CHANGE, at(2025, 7, 3, 10))]
    assert true_up_start(RISE, late, now) == at(2025, 1, 1)  # the cycle it happened in
    assert true_up_start(RISE, late, at(2026, 3, 1)) is None  # cycle over: settled
    assert divergence(RISE, {**held, NEW: CHANGE}, now) == []


def test_rating_from_a_checkpoint_with_the_shared_tariff_agrees_with_the_full_one():
    readings = series(date(2025, 6, 21), [1_500 + 11 * k for k in range(30)])
    confirmed = {OLD: at(2025, 1, 1), NEW: at(2025, 7, 2, 15)}
    full = Rater(meter_tariff(RISE, confirmed))
    first = full.rate(readings[:20], CONTEXT)
    since = readings[19].at
    shared = Rater(meter_tariff(RISE, as_of(RISE, confirmed, since)))
    assert as_of(RISE, confirmed, since) == {NEW: CHANGE}
    rest_full = full.rate(readings[20:], CONTEXT, first.state)
    rest_shared = shared.rate(readings[20:], CONTEXT, first.state)
    assert rest_full.amounts_by_day() == rest_shared.amounts_by_day()
    assert rest_full.state.cost_micro == rest_shared.state.cost_micro


# -- properties ------------------------------------------------------------------------

daily_use = st.lists(st.integers(0, 6_000), min_size=2, max_size=30)
offsets = st.one_of(st.none(), st.integers(-48, 24 * 12))


@given(daily_use, offsets, st.integers(0, 400_000))
@settings(max_examples=80, deadline=None)
def test_true_ups_are_what_the_tariff_in_force_charges_minus_what_the_meter_deducted(
    use, offset_hours, start
):
    readings = series(date(2025, 6, 20), use, start)
    confirmed: dict[str, datetime] = {OLD: at(2025, 1, 1)}
    if offset_hours is not None:
        confirmed[NEW] = CHANGE + timedelta(hours=offset_hours)
    official, metered = both(readings, confirmed)
    result = true_up(official, metered)
    charged, deducted = official.amounts_by_day(), metered.amounts_by_day()
    assert sum(result.values()) == official.total_fen - metered.total_fen
    for key in set(charged) | set(deducted):
        assert result.get(key, 0) == charged.get(key, 0) - deducted.get(key, 0)
    if offset_hours == 0:
        assert result == {}
    for _, day in result:  # only where the meter held other prices, or rounding after it
        assert day >= min(CHANGE, confirmed.get(NEW, CHANGE)).astimezone(ZONE).date()


@given(daily_use, st.integers(1, 24 * 12), st.integers(1, 29))
@settings(max_examples=40, deadline=None)
def test_a_checkpoint_anywhere_rates_the_same_with_the_shared_meter_tariff(use, hours, cut):
    readings = series(date(2025, 6, 20), use)
    cut = min(cut, len(readings) - 1)
    confirmed = {OLD: at(2025, 1, 1), NEW: CHANGE + timedelta(hours=hours)}
    full = Rater(meter_tariff(RISE, confirmed))
    head = full.rate(readings[: cut + 1], CONTEXT)
    shared = Rater(meter_tariff(RISE, as_of(RISE, confirmed, readings[cut].at)))
    # the checkpoint's version index is the full tariff's: harmless for the shared one
    a = full.rate(readings[cut + 1 :], CONTEXT, head.state)
    b = shared.rate(readings[cut + 1 :], CONTEXT, head.state)
    assert a.amounts_by_day() == b.amounts_by_day()
