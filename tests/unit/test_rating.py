"""Rating: golden examples computed by hand, and properties that must always hold."""

from collections import defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbill.domain.money import Money, Price, Volume, round_micro_to_fen
from gasbill.domain.rating import (
    AnomalyKind,
    Rater,
    RatingContext,
    charge_difference,
    rate,
)
from gasbill.domain.tariff import HouseholdMode, HouseholdPolicy, Proration
from tests.factories import at, daily, reading, tariff, version

BEIJING = tariff(version())


def yuan(fen: int) -> Money:
    return Money.of_fen(fen)


# -- golden examples -------------------------------------------------------------


def test_tier_crossings_across_an_annual_cycle():
    result = rate(
        BEIJING,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 6, 1), "340"),
            reading(at(2025, 7, 1), "360"),
            reading(at(2025, 12, 1), "520"),
        ],
    )
    amounts = [p.amount for p in result.periods]
    # 340 × 2.61; 10 × 2.61 + 10 × 2.83; 140 × 2.83 + 20 × 4.23
    assert amounts == [Money("887.40"), Money("54.40"), Money("480.80")]
    assert yuan(result.total_fen) == Money("1422.60")
    tiers = defaultdict(Decimal)
    for _, line in result.periods[1].lines:
        tiers[line.tier] += line.volume.value
    assert dict(tiers) == {1: Decimal("10"), 2: Decimal("10")}


def test_a_period_over_a_cycle_boundary_is_split_in_proportion_to_time():
    result = rate(
        BEIJING,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 12, 31), "600"),
            reading(at(2026, 1, 2), "610"),  # 10 m³ over two days, one in each cycle
        ],
    )
    last = result.periods[-1]
    by_cycle = {c.cycle.key: (c.volume, c.amount) for c in last.charges}
    assert by_cycle == {
        "2025-01-01": (Volume("5"), Money("21.15")),  # 5 × 4.23, third tier of 2025
        "2026-01-01": (Volume("5"), Money("13.05")),  # 5 × 2.61, first tier of 2026
    }
    assert last.amount == Money("34.20")


def test_a_reading_on_the_cycle_boundary_places_the_split_exactly():
    result = rate(
        BEIJING,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 12, 31), "600"),
            reading(at(2026, 1, 1), "604"),  # the freeze at midnight closes Dec 31
            reading(at(2026, 1, 2), "610"),
        ],
    )
    dec31, jan1 = result.periods[1], result.periods[2]
    assert [(c.cycle.key, c.day) for c in dec31.charges] == [("2025-01-01", date(2025, 12, 31))]
    assert dec31.amount == Money("16.92")  # 4 × 4.23
    assert jan1.amount == Money("15.66")  # 6 × 2.61


PRICE_CHANGE = tariff(
    version(("3.00", "3.30"), ("300",), label="2025-01"),
    version(("3.20", "3.50"), ("300",), label="2025-07", effective=at(2025, 7, 1)),
)


def test_price_change_mid_cycle_with_a_reading_on_the_change_date():
    result = rate(
        PRICE_CHANGE,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 6, 30), "290"),
            reading(at(2025, 7, 1), "300"),
            reading(at(2025, 7, 2), "320"),
        ],
    )
    june30, july1 = result.periods[1], result.periods[2]
    assert [(c.version, c.amount) for c in june30.charges] == [("2025-01", Money("30.00"))]
    # cycle-to-date usage carries over the change: 300 m³ used, so tier 2 at the new price
    assert [(line.tier, line.price.value) for _, line in july1.lines] == [(2, Decimal("3.5"))]
    assert july1.amount == Money("70.00")


def test_price_change_mid_cycle_without_a_reading_on_the_change_date():
    result = rate(
        PRICE_CHANGE,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 6, 30), "290"),
            reading(at(2025, 7, 2), "320"),  # 30 m³ over June 30 and July 1: 15 each
        ],
    )
    gap = result.periods[1]
    pieces = [(c.version, c.day, c.volume, c.amount) for c in gap.charges]
    assert pieces == [
        ("2025-01", date(2025, 6, 30), Volume("15"), Money("46.50")),  # 10 × 3.00 + 5 × 3.30
        ("2025-07", date(2025, 7, 1), Volume("15"), Money("52.50")),  # 15 × 3.50
    ]


def test_reset_on_change_restarts_the_tier_counter_but_not_the_cycle():
    reset = tariff(
        version(("3.00", "3.30"), ("300",), label="a"),
        version(
            ("3.00", "3.30"), ("300",), label="b", effective=at(2025, 7, 1), reset_on_change=True
        ),
    )
    result = rate(
        reset,
        [
            reading(at(2025, 1, 1), "0"),
            reading(at(2025, 7, 1), "400"),
            reading(at(2025, 8, 1), "500"),
        ],
    )
    assert result.periods[1].amount == Money("300.00")  # 100 m³ back in tier 1
    assert result.state.cycle is not None
    assert result.state.cycle.key == "2025-01-01"


SHANGHAI_5_PLUS = HouseholdPolicy(HouseholdMode.SHIFT, ((5, Volume("150")),))


@pytest.mark.parametrize(
    ("mode", "persons", "expected"),
    [
        # 310 × 3.00 + 210 × 3.30 + 180 × 4.20
        (HouseholdMode.SHIFT, 3, "2379.00"),
        # thresholds 460 / 670: 460 × 3.00 + 210 × 3.30 + 30 × 4.20
        (HouseholdMode.SHIFT, 5, "2199.00"),
        # thresholds 460 / 820: 460 × 3.00 + 240 × 3.30
        (HouseholdMode.WIDEN, 6, "2172.00"),
    ],
)
def test_household_shift_and_widen(mode, persons, expected):
    policy = replace(SHANGHAI_5_PLUS, mode=mode)
    shanghai = tariff(version(("3.00", "3.30", "4.20"), ("310", "520"), household=policy))
    result = rate(
        shanghai,
        [reading(at(2025, 1, 1), "0"), reading(at(2025, 12, 1), "700")],
        RatingContext(persons=persons),
    )
    assert yuan(result.total_fen) == Money(expected)


@pytest.mark.parametrize(
    ("proration", "expected"),
    [
        (Proration.NONE, "522.00"),  # 200 × 2.61
        (Proration.BY_MONTH, "527.50"),  # 6 of 12 months: 175 × 2.61 + 25 × 2.83
        # 184 of 365 days: 176.438 × 2.61 + 23.562 × 2.83 = 527.18364
        (Proration.BY_DAY, "527.18"),
    ],
)
def test_opening_proration(proration, expected):
    prorated = tariff(version(proration=proration))
    result = rate(
        prorated,
        [reading(at(2025, 7, 1), "0"), reading(at(2025, 12, 1), "200")],
        RatingContext(opened_on=date(2025, 7, 1)),
    )
    assert yuan(result.total_fen) == Money(expected)


def test_proration_only_touches_the_opening_cycle():
    prorated = tariff(version(proration=Proration.BY_MONTH))
    result = rate(
        prorated,
        [reading(at(2026, 1, 1), "0"), reading(at(2026, 12, 1), "200")],
        RatingContext(opened_on=date(2025, 7, 1)),
    )
    assert yuan(result.total_fen) == Money("522.00")


def test_meter_mode_thresholds_are_whole_cubic_metres():
    prorated = tariff(version(proration=Proration.BY_DAY))
    rater = Rater(prorated)
    context = RatingContext(opened_on=date(2025, 7, 1), whole_m3=True)
    result = rater.rate([reading(at(2025, 7, 1), "0"), reading(at(2025, 12, 1), "200")], context)
    # 176.438 rounds down to 176: 176 × 2.61 + 24 × 2.83
    assert yuan(result.total_fen) == Money("527.28")


def test_each_line_carries_its_period_cycle_version_tier_volume_price_and_exact_cost():
    result = rate(BEIJING, [reading(at(2025, 1, 1), "0"), reading(at(2025, 1, 2), "1.003")])
    (charge,) = result.charges
    (line,) = charge.lines
    assert (charge.period_from, charge.period_to) == (at(2025, 1, 1), at(2025, 1, 2))
    assert (charge.cycle.key, charge.version, line.tier) == ("2025-01-01", "v1", 1)
    assert (line.volume, line.price, line.cost) == (
        Volume("1.003"),
        Price("2.61"),
        Money("2.61783"),
    )
    assert charge.amount == Money("2.62")


def test_rounding_never_drifts_within_a_cycle():
    # 0.001 m³ at 2.61 is 0.00261 yuan: rounded alone, each day would charge 0.00
    series = daily(date(2025, 1, 1), [1] * 300)
    result = rate(BEIJING, series)
    assert yuan(result.total_fen) == Money("0.78")  # 0.300 m³ × 2.61 = 0.783
    assert all(p.amount_fen in (0, 1) for p in result.periods)


# -- anomalies --------------------------------------------------------------------


def test_backwards_conflicting_and_excessive_readings_are_anomalies_not_charges():
    result = rate(
        BEIJING,
        [
            reading(at(2025, 1, 1), "100"),
            reading(at(2025, 1, 2), "101"),
            reading(at(2025, 1, 2), "101"),  # the same reading again: ignored
            reading(at(2025, 1, 2), "102"),  # same time, another value
            reading(at(2025, 1, 2, 2), "150"),  # 49 m³ in two hours
            reading(at(2025, 1, 3), "99"),  # backwards
            reading(at(2025, 1, 4), "103"),
        ],
        RatingContext(max_flow_m3_per_hour=Decimal("10")),
    )
    assert [a.kind for a in result.anomalies] == [
        AnomalyKind.CONFLICTING_DUPLICATE,
        AnomalyKind.EXCESSIVE_FLOW,
        AnomalyKind.BACKWARDS,
    ]
    assert [p.volume for p in result.periods] == [Volume("1"), Volume("2")]


def test_a_reading_earlier_than_the_carried_state_is_out_of_order():
    first = rate(BEIJING, [reading(at(2025, 1, 1), "0"), reading(at(2025, 1, 3), "2")])
    late = Rater(BEIJING).rate([reading(at(2025, 1, 2), "1")], state=first.state)
    assert [a.kind for a in late.anomalies] == [AnomalyKind.OUT_OF_ORDER]
    assert late.state == first.state


def test_readings_before_the_first_version_are_not_billed():
    result = rate(BEIJING, [reading(at(2018, 6, 1), "0"), reading(at(2018, 7, 1), "10")])
    assert [a.kind for a in result.anomalies] == [AnomalyKind.NO_TARIFF]
    assert result.periods == []


def test_a_new_register_continues_billing_without_gap_or_double_charge():
    before = rate(BEIJING, [reading(at(2025, 1, 1), "0"), reading(at(2025, 3, 1), "340")])
    # old meter's final reading 345 on Mar 5, new meter opens at 12 the same instant
    final = Rater(BEIJING).rate([reading(at(2025, 3, 5), "345")], state=before.state)
    state = final.state.rebased(reading(at(2025, 3, 5), "12"))
    after = Rater(BEIJING).rate([reading(at(2025, 4, 1), "32")], state=state)
    assert after.periods[0].volume == Volume("20")
    # 5 more m³ in tier 1 (to 350) and 15 in tier 2: 13.05 + 42.45
    assert yuan(after.total_fen) == Money("55.50")


# -- re-rating --------------------------------------------------------------------


def test_a_late_reading_reposts_only_the_difference():
    with_gap = [reading(at(2025, 1, 1), "0"), reading(at(2025, 1, 4), "30")]
    complete = [
        reading(at(2025, 1, 1), "0"),
        reading(at(2025, 1, 2), "2"),
        reading(at(2025, 1, 4), "30"),
    ]
    posted = rate(BEIJING, with_gap).amounts_by_day()
    target = rate(BEIJING, complete).amounts_by_day()
    assert posted == {("2025-01-01", date(2025, 1, d)): 2610 for d in (1, 2, 3)}
    difference = charge_difference(target, posted)
    assert difference == {
        ("2025-01-01", date(2025, 1, 1)): -2088,  # 2 m³, not 10
        ("2025-01-01", date(2025, 1, 2)): 1044,  # 14 m³
        ("2025-01-01", date(2025, 1, 3)): 1044,
    }
    assert sum(difference.values()) == 0
    assert charge_difference(target, target) == {}


# -- properties -----------------------------------------------------------------

daily_use = st.lists(st.integers(min_value=0, max_value=40_000), min_size=2, max_size=80)
price_text = st.decimals(min_value=0, max_value=20, places=3).map(str)


@st.composite
def ladders(draw):
    tiers = draw(st.integers(min_value=1, max_value=5))
    prices = [draw(price_text) for _ in range(tiers)]
    steps = draw(
        st.lists(
            st.integers(min_value=1, max_value=400_000), min_size=tiers - 1, max_size=tiers - 1
        )
    )
    thresholds, total = [], 0
    for step in steps:
        total += step
        thresholds.append(str(Volume.of_litres(total).value))
    cycle_months = draw(st.sampled_from([1, 2, 3, 12]))
    return tariff(
        version(prices, thresholds, cycle_months=cycle_months, cycle_start=date(2024, 11, 15))
    )


@given(ladders(), daily_use, st.data())
@settings(max_examples=60, deadline=None)
def test_rating_whole_equals_rating_in_two_parts_with_state_carried(ladder, use, data):
    series = daily(date(2025, 1, 20), use)
    cut = data.draw(st.integers(min_value=1, max_value=len(series) - 1))
    whole = Rater(ladder).rate(series)
    first = Rater(ladder).rate(series[:cut])
    second = Rater(ladder).rate(series[cut:], state=first.state)
    assert first.periods + second.periods == whole.periods
    assert second.state == whole.state


@given(ladders(), daily_use)
@settings(max_examples=60, deadline=None)
def test_a_cycles_charges_sum_to_the_rounded_cost_of_its_usage(ladder, use):
    result = Rater(ladder).rate(daily(date(2025, 1, 20), use))
    charged: dict[str, int] = defaultdict(int)
    cost: dict[str, int] = defaultdict(int)
    for charge in result.charges:
        charged[charge.cycle.key] += charge.amount_fen
        cost[charge.cycle.key] += sum(line.cost_micro for line in charge.lines)
    for key in charged:
        assert charged[key] == round_micro_to_fen(cost[key])


@given(
    ladders(),
    daily_use,
    st.lists(st.integers(min_value=0, max_value=5_000), min_size=80, max_size=80),
)
@settings(max_examples=60, deadline=None)
def test_more_usage_never_costs_less(ladder, use, extra):
    more = [u + e for u, e in zip(use, extra, strict=False)]
    base = Rater(ladder).rate(daily(date(2025, 1, 20), use))
    bigger = Rater(ladder).rate(daily(date(2025, 1, 20), more))
    assert bigger.total_fen >= base.total_fen


@given(price_text, daily_use)
@settings(max_examples=60, deadline=None)
def test_equal_prices_reduce_to_flat_price_times_volume(price, use):
    flat = tariff(version((price, price, price), ("1", "2")))
    result = Rater(flat).rate(daily(date(2025, 1, 20), use))
    expected = Price(price).cost(Volume.of_litres(sum(use))).rounded()
    assert yuan(result.total_fen) == expected


@given(st.lists(st.integers(min_value=0, max_value=20_000), min_size=3, max_size=40), st.data())
@settings(max_examples=60, deadline=None)
def test_re_rating_with_a_missing_reading_restored_moves_money_only_between_days(use, data):
    series = daily(date(2025, 3, 1), use)
    dropped = data.draw(st.integers(min_value=1, max_value=len(series) - 2))
    posted = rate(BEIJING, series[:dropped] + series[dropped + 1 :]).amounts_by_day()
    target = rate(BEIJING, series).amounts_by_day()
    difference = charge_difference(target, posted)
    assert set(difference) <= set(target) | set(posted)
    reposted = {k: posted.get(k, 0) + difference.get(k, 0) for k in set(posted) | set(target)}
    assert {k: v for k, v in reposted.items() if v} == {k: v for k, v in target.items() if v}
