from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gasbill.domain.cycles import CycleRule
from gasbill.domain.errors import TariffError


def test_annual_cycle_from_january():
    rule = CycleRule(date(2019, 1, 1), 12)
    assert rule.bounds(date(2025, 6, 15)) == (date(2025, 1, 1), date(2026, 1, 1))
    assert rule.bounds(date(2025, 1, 1)) == (date(2025, 1, 1), date(2026, 1, 1))
    assert rule.bounds(date(2024, 12, 31)) == (date(2024, 1, 1), date(2025, 1, 1))


def test_month_end_anchor_is_clipped_but_not_chained():
    rule = CycleRule(date(2025, 1, 31), 1)
    assert rule.start_of(1) == date(2025, 2, 28)
    assert rule.start_of(2) == date(2025, 3, 31)
    assert rule.bounds(date(2025, 3, 15)) == (date(2025, 2, 28), date(2025, 3, 31))
    assert rule.start_of(13) == date(2026, 2, 28)
    assert CycleRule(date(2024, 1, 31), 1).start_of(1) == date(2024, 2, 29)


def test_cycles_before_the_anchor():
    rule = CycleRule(date(2025, 4, 1), 3)
    assert rule.bounds(date(2025, 3, 31)) == (date(2025, 1, 1), date(2025, 4, 1))


@pytest.mark.parametrize("months", [0, 121, -1])
def test_cycle_months_out_of_range_is_refused(months):
    with pytest.raises(TariffError, match="cycle_months"):
        CycleRule(date(2025, 1, 1), months)


@given(
    anchor=st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    months=st.integers(min_value=1, max_value=120),
    offset=st.integers(min_value=-20_000, max_value=20_000),
)
def test_every_day_lies_in_exactly_one_cycle(anchor, months, offset):
    rule = CycleRule(anchor, months)
    day = anchor + timedelta(days=offset)
    start, end = rule.bounds(day)
    assert start <= day < end
    assert rule.bounds(start) == (start, end)
    assert rule.bounds(end - timedelta(days=1)) == (start, end)
    assert rule.bounds(end)[0] == end
