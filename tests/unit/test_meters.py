"""Billing across an account's meters (domain.meters): switches, openings, the 36-hour window.

Prices: 2.61 yuan/m³ in tier 1 (BEIJING below), so 10 m³ = 26.10 yuan.
"""

from __future__ import annotations

from datetime import timedelta

from gasbill.domain.meters import (
    APPLIED_WITHIN,
    MeterSpan,
    RegisterReading,
    applied_at,
    opening_reading,
    rate_meters,
)
from gasbill.domain.rating import FrozenReading, Rater, RatingContext, RatingState
from tests.factories import at, tariff, version

RATER = Rater(tariff(version()))
EPOCH = at(1970, 1, 1)
NOW = at(2025, 3, 1)


def litres(m3: int) -> int:
    return m3 * 1000


def read(day: int, m3: int, *, real_time: bool = False, hour: int = 0) -> RegisterReading:
    return RegisterReading(at(2025, 1, day, hour), litres(m3), litres(m3), real_time)


def span(comm_no: str, bound: int, readings, *, opening: int = 0, unbound=None, final=None):
    return MeterSpan(
        comm_no=comm_no,
        bound_at=at(2025, 1, bound),
        opening_litres=litres(opening),
        unbound_at=None if unbound is None else at(2025, 1, unbound),
        final_litres=None if final is None else litres(final),
        readings=readings,
    )


def rated(spans, state=RatingState(), *, start=EPOCH, opening=None, now=NOW):
    return rate_meters(spans, RATER, RatingContext(), state, start=start, now=now, opening=opening)


def test_one_meter_is_rated_from_its_opening_register():
    meter = span("A", 1, [read(2, 5), read(3, 10)], opening=0)
    out = rated([meter])
    assert out.readings == 2 and out.result.total_fen == 2610  # 10 m³ from the opening 0
    assert out.result.state.last is not None and out.result.state.last.at == at(2025, 1, 3)


def test_a_replaced_meter_is_closed_by_its_final_register_and_the_next_rebased():
    old = span("A", 1, [read(2, 5)], unbound=4, final=8)
    new = span("B", 4, [read(5, 1003)], opening=1000)  # a new meter starts at 1000 m³
    out = rated([old, new])
    # 8 m³ on the old meter (its final register added), 3 m³ on the new one: 11 m³
    assert out.readings == 3
    assert out.result.total_fen == 2871
    assert out.result.state.cycle is not None  # the same cycle carried across the switch


def test_readings_after_a_meter_came_off_are_not_its_own():
    old = span("A", 1, [read(2, 5), read(6, 50)], unbound=4, final=8)
    out = rated([old])
    assert out.readings == 2 and out.result.total_fen == 2088  # 8 m³: up to its final register


def test_readings_after_now_wait_for_a_later_run():
    meter = span("A", 1, [read(2, 5), read(6, 50)])
    out = rated([meter], now=at(2025, 1, 3))
    assert out.readings == 1 and out.result.total_fen == 1305  # 5 m³ up to now only


def test_a_meter_unbound_before_the_checkpoint_is_skipped():
    old = span("A", 1, [read(2, 5)], unbound=4, final=8)
    new = span("B", 4, [read(5, 1003), read(6, 1005)], opening=1000)
    checkpoint = RatingState(last=FrozenReading(at(2025, 1, 5), litres(1003), litres(1003)))
    out = rated([old, new], checkpoint, start=at(2025, 1, 5))
    assert out.readings == 1 and out.result.total_fen == 522  # only 2 m³ after the checkpoint


def test_a_meter_mode_account_is_rated_from_when_it_was_opened_on_the_meter():
    meter = span("A", 1, [read(2, 5), read(3, 7), read(5, 10)])
    opening = opening_reading(at(2025, 1, 3), [meter])
    assert opening == FrozenReading(at(2025, 1, 3), litres(7), litres(7))
    out = rated([meter], opening=opening)
    assert out.readings == 1 and out.result.total_fen == 783  # 3 m³ from the opening's 7


def test_no_opening_reading_when_no_reading_was_taken_then():
    assert opening_reading(at(2025, 1, 4), [span("A", 1, [read(3, 7)])]) is None


def test_anomalies_name_their_meter():
    meter = span("A", 1, [read(2, 5), read(3, 4)])  # the register went backwards
    out = rated([meter])
    assert [comm_no for _, comm_no in out.anomalies] == ["A"] * len(out.anomalies)
    assert out.anomalies


def test_a_command_took_effect_at_the_last_wake_before_its_confirmation():
    confirmed = at(2025, 1, 3, 12)
    meter = span(
        "A",
        1,
        [
            read(2, 5, real_time=True, hour=9),
            read(3, 6, real_time=True, hour=8),  # the last wake before the confirmation
            read(3, 6, hour=10),  # frozen, not a wake
            read(3, 7, real_time=True, hour=13),  # after it
        ],
    )
    assert applied_at(confirmed, [meter]) == at(2025, 1, 3, 8)


def test_a_wake_more_than_36_hours_back_is_not_the_one_that_took_the_command():
    confirmed = at(2025, 1, 3, 12)
    woke = confirmed - APPLIED_WITHIN - timedelta(minutes=1)
    meter = span("A", 1, [RegisterReading(woke, 1, 1, True)])
    assert applied_at(confirmed, [meter]) == confirmed
    at_edge = span("A", 1, [RegisterReading(confirmed - APPLIED_WITHIN, 1, 1, True)])
    assert applied_at(confirmed, [at_edge]) == confirmed - APPLIED_WITHIN


def test_the_day_end_is_the_state_at_the_last_midnight_reading_and_rating_on_from_it_agrees():
    readings = [read(2, 5), read(2, 6, real_time=True, hour=9), read(3, 9), read(3, 11, hour=14)]
    out = rated([span("A", 1, readings)])
    day_end = out.day_end
    assert day_end is not None and day_end.state.last is not None
    assert day_end.state.last.at == at(2025, 1, 3)  # the last reading at a midnight
    assert day_end.periods == out.result.periods[: len(day_end.periods)]
    # resuming from it gives the rest of the days exactly
    resumed = rated([span("A", 1, readings)], day_end.state, start=at(2025, 1, 3))
    assert out.result.periods[len(day_end.periods) :] == resumed.result.periods
    assert resumed.result.state == out.result.state


def test_no_day_end_without_a_reading_at_midnight():
    readings = [read(2, 5, hour=9), read(3, 9, hour=14)]
    assert rated([span("A", 1, readings)]).day_end is None
