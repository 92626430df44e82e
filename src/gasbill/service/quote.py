"""Quote: rate a file of readings on a tariff, refusing anything it cannot bill."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

from gasbill.domain.rating import FrozenReading, Rater, RatingContext, RatingResult
from gasbill.domain.tariff import Tariff


class NumberedReading(Protocol):
    """A frozen reading with the line of the file it was read from (adapters.readings_file)."""

    @property
    def line(self) -> int: ...
    @property
    def reading(self) -> FrozenReading: ...


class QuoteError(ValueError):
    """Input a quote cannot be given for; the message names the line and the problem."""


def quote(
    tariff: Tariff,
    rows: Sequence[NumberedReading],
    *,
    persons: int | None = None,
    opened_on: date | None = None,
    max_flow_m3_per_hour: Decimal | None = None,
    source: str = "readings",
) -> RatingResult:
    if not rows:
        raise QuoteError(f"{source}: no frozen readings to quote")
    zone = ZoneInfo(tariff.zone)
    for previous, row in itertools.pairwise(rows):
        if row.reading.at < previous.reading.at:
            raise QuoteError(
                f"{source}: line {row.line}: readings out of order "
                f"({_local(row.reading.at, zone)} is before line {previous.line}'s "
                f"{_local(previous.reading.at, zone)})"
            )
    context = RatingContext(
        persons=persons, opened_on=opened_on, max_flow_m3_per_hour=max_flow_m3_per_hour
    )
    result = Rater(tariff).rate([row.reading for row in rows], context)
    if result.anomalies:
        anomaly = result.anomalies[0]
        line = next(row.line for row in rows if row.reading is anomaly.reading)
        raise QuoteError(
            f"{source}: line {line}: {anomaly.kind.replace('_', ' ')}: {anomaly.detail}"
        )
    return result


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
