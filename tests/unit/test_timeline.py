"""A gap's volume split over its days: in proportion to time, the running total rounded."""

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gasbill.domain.timeline import Timeline, split_in_proportion, to_us
from tests.factories import tariff, version

BEIJING = tariff(version())


def test_leftovers_are_spread_not_given_to_the_first_parts():
    # 10 litres over 4 equal days: 2.5 each; the running totals 2.5, 5, 7.5, 10
    # round (halves up) to 3, 5, 8, 10.
    assert split_in_proportion(10, [1, 1, 1, 1]) == [3, 2, 3, 2]
    # 7 litres over 214 days, 184 of them in the first part: 6.02 before the boundary.
    assert split_in_proportion(7, [184, 30]) == [6, 1]


def test_the_issues_gap_places_its_exact_share_before_the_year_end():
    # 856.107 m³ from 2025-07-01 to 2026-01-31: 184 of 214 days lie in 2025.
    shares = split_in_proportion(856_107, [1] * 214)
    assert sum(shares[:184]) == 736_092
    assert max(shares) - min(shares) <= 1


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="positive"):
        split_in_proportion(5, [0, 0])
    with pytest.raises(ValueError, match="negative"):
        split_in_proportion(5, [2, -1])


weights = st.lists(st.integers(min_value=0, max_value=86_400_000_000), min_size=1, max_size=250)


@given(st.integers(min_value=0, max_value=10**9), weights)
@settings(max_examples=200, deadline=None)
def test_every_boundary_is_within_half_a_litre_of_its_exact_share(total, parts):
    if sum(parts) == 0:
        parts = [*parts, 1]
    shares = split_in_proportion(total, parts)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    whole = sum(parts)
    elapsed = assigned = 0
    for weight, share in zip(parts, shares, strict=True):
        elapsed += weight
        assigned += share
        assert abs(assigned - Fraction(total * elapsed, whole)) <= Fraction(1, 2)


@given(
    st.integers(min_value=0, max_value=5_000_000),
    st.integers(min_value=0, max_value=400 * 86_400),
    st.integers(min_value=60, max_value=200 * 86_400),
)
@settings(max_examples=100, deadline=None)
def test_a_gaps_litres_before_any_day_boundary_differ_from_its_time_share_by_under_a_litre(
    litres, offset_s, length_s
):
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=offset_s)
    end = start + timedelta(seconds=length_s)
    timeline = Timeline(BEIJING)
    begin_us, end_us = to_us(start), to_us(end)
    timeline.ensure(begin_us, end_us)
    pieces = timeline.pieces(begin_us, end_us, litres)
    assert sum(p.litres for p in pieces) == litres
    assert pieces[0].from_us == begin_us and pieces[-1].to_us == end_us
    before = 0
    for piece in pieces:
        before += piece.litres
        exact = Fraction(litres * (piece.to_us - begin_us), end_us - begin_us)
        assert abs(before - exact) < 1


def test_a_days_worth_is_the_same_wherever_the_gap_begins():
    # A 20-day gap of 20.010 m³ gives every day 1.000 or 1.001 m³, never 1.002.
    timeline = Timeline(BEIJING)
    start = to_us(datetime(2025, 3, 1, tzinfo=UTC) - timedelta(hours=8))
    end = start + 20 * 86_400_000_000
    timeline.ensure(start, end)
    litres = [p.litres for p in timeline.pieces(start, end, 20_010)]
    assert len(litres) == 20 and set(litres) <= {1000, 1001}
    assert date(2025, 3, 1) == timeline.pieces(start, end, 20_010)[0].regime.day
