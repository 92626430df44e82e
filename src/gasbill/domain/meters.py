"""Billing rules across an account's meters: switches, openings, when a command took effect.

An account is billed over the meters it was bound to, one span each. Each
next meter is a new register: rating rebases onto its opening reading in
the same cycle, so a replacement neither skips nor double-counts gas. A
meter-mode meter deducts only from when it was opened on the meter, and
so does billing's shadow of it. A confirmed command took effect when the
meter last woke before the confirmation (its real-time reading), looked
for within `APPLIED_WITHIN`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gasbill.domain.rating import (
    Anomaly,
    FrozenReading,
    RatedPeriod,
    Rater,
    RatingContext,
    RatingResult,
    RatingState,
)

# A meter wakes at least once a day; a reading further back than this before a
# confirmation belongs to an earlier wake, not to the one that took the command.
APPLIED_WITHIN = timedelta(hours=36)


class RegisterReading(NamedTuple):
    """A stored reading of a meter's registers, in litres."""

    at: datetime
    std: int | None
    work: int | None
    real_time: bool = False  # taken when the meter woke (data_type 0), not frozen


@dataclass(frozen=True, slots=True)
class MeterSpan:
    """One meter an account used, from `bound_at` to `unbound_at` (None: still)."""

    comm_no: str
    bound_at: datetime
    opening_litres: int
    unbound_at: datetime | None
    final_litres: int | None
    readings: Sequence[RegisterReading]

    def covers(self, at: datetime) -> bool:
        return self.unbound_at is None or at <= self.unbound_at


@dataclass(frozen=True, slots=True)
class MetersRated:
    result: RatingResult
    anomalies: list[tuple[Anomaly, str]]  # each with its meter's comm_no
    readings: int  # how many readings were rated
    # the rating up to the last reading at a local midnight (its periods and the state
    # there), or None: where a later run can resume when the last reading ends no day
    # (a meter's real-time reading at its wake-up follows its frozen one)
    day_end: RatingResult | None = None


def applied_at(confirmed_at: datetime, spans: Sequence[MeterSpan]) -> datetime:
    """When a confirmed command took effect on the meter.

    The platform reports the ending, not the instant; a meter takes commands
    when it wakes and reports a reading then, so that reading's time — the
    latest before the confirmation — is the instant. Without one (no
    real-time reading), the confirmation time stands.
    """
    woke = [
        r.at
        for span in spans
        for r in span.readings
        if r.real_time and confirmed_at - APPLIED_WITHIN <= r.at <= confirmed_at
    ]
    return max(woke, default=confirmed_at)


def opening_reading(at: datetime, spans: Sequence[MeterSpan]) -> FrozenReading | None:
    """The register at the opening instant, if a reading gives it."""
    for span in spans:
        for r in span.readings:
            if r.at == at:
                return FrozenReading(r.at, r.std, r.work)
    return None


def rate_meters(
    spans: Sequence[MeterSpan],
    rater: Rater,
    context: RatingContext,
    state: RatingState,
    *,
    start: datetime,
    now: datetime,
    opening: FrozenReading | None = None,
) -> MetersRated:
    """Rate the readings after `state` (taken up to `now`) across the account's meters."""
    periods: list[RatedPeriod] = []
    anomalies: list[tuple[Anomaly, str]] = []
    count = 0
    switched = False  # after the first meter rated here, each next one is a new register
    zone = ZoneInfo(rater.tariff.zone)
    day_end: tuple[int, RatingState] | None = None
    for span in spans:
        if span.unbound_at is not None and span.unbound_at <= start:
            continue
        state = _register_for(span, state, opening, switched)
        assert state.last is not None
        last_at = state.last.at
        series = [
            FrozenReading(r.at, r.std, r.work)
            for r in span.readings
            if last_at < r.at <= now and span.covers(r.at)
        ]
        if (
            span.unbound_at is not None
            and span.final_litres is not None
            and (not series or series[-1].at < span.unbound_at)
        ):
            # the register read when the meter came off closes its span
            series.append(FrozenReading(span.unbound_at, span.final_litres, span.final_litres))
        switched = True
        count += len(series)
        cut = _last_at_midnight(series, zone)
        if cut is not None and cut + 1 < len(series):
            # rated in two parts, the state between them kept: rating is a fold over the
            # readings, so the parts add up to what one pass gives
            head = rater.rate(series[: cut + 1], context, state)
            tail = rater.rate(series[cut + 1 :], context, head.state)
            day_end = (len(periods) + len(head.periods), head.state)
            result = RatingResult(
                head.periods + tail.periods, head.anomalies + tail.anomalies, tail.state
            )
        else:
            result = rater.rate(series, context, state)
            if cut is not None:
                day_end = (len(periods) + len(result.periods), result.state)
        periods.extend(result.periods)
        anomalies.extend((anomaly, span.comm_no) for anomaly in result.anomalies)
        state = result.state
    marked = None if day_end is None else RatingResult(periods[: day_end[0]], [], day_end[1])
    return MetersRated(RatingResult(periods, [], state), anomalies, count, marked)


def _last_at_midnight(series: Sequence[FrozenReading], zone: ZoneInfo) -> int | None:
    """The index of the last reading taken at a local midnight (a frozen one), if any."""
    for index in range(len(series) - 1, -1, -1):
        local = series[index].at.astimezone(zone)
        if not (local.hour or local.minute or local.second or local.microsecond):
            return index
    return None


def _register_for(
    span: MeterSpan, state: RatingState, opening: FrozenReading | None, switched: bool
) -> RatingState:
    """The state to rate `span`'s readings from."""
    if state.last is None and opening is not None and span.covers(opening.at):
        # a meter-mode meter deducts from when it was opened: so does its shadow
        return RatingState(last=opening)
    if state.last is None or switched or span.bound_at > state.last.at:
        # a new register from here on: the meter's opening reading
        first = FrozenReading(span.bound_at, span.opening_litres, span.opening_litres)
        return state.rebased(first) if state.last is not None else RatingState(last=first)
    return state
