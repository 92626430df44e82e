"""Tariffs and readings built in code, for tests that must not depend on files."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import CycleRule
from gasbill.domain.money import Price, Volume
from gasbill.domain.rating import FrozenReading
from gasbill.domain.tariff import HouseholdPolicy, Proration, Tariff, TariffVersion

ZONE_NAME = "Asia/Shanghai"
ZONE = ZoneInfo(ZONE_NAME)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=ZONE)


def version(
    prices: Sequence[str] = ("2.61", "2.83", "4.23"),
    thresholds: Sequence[str] = ("350", "500"),
    *,
    label: str = "v1",
    effective: datetime | None = None,
    cycle_start: date = date(2019, 1, 1),
    cycle_months: int = 12,
    household: HouseholdPolicy | None = None,
    proration: Proration = Proration.NONE,
    reset_on_change: bool = False,
) -> TariffVersion:
    return TariffVersion(
        label=label,
        effective_from=effective or at(2019, 1, 1),
        prices=tuple(Price(p) for p in prices),
        thresholds=tuple(Volume(t) for t in thresholds),
        cycle=CycleRule(cycle_start, cycle_months),
        household=household or HouseholdPolicy(),
        opening_proration=proration,
        reset_on_change=reset_on_change,
    )


def tariff(*versions: TariffVersion, rounding: str = "ROUND_HALF_UP") -> Tariff:
    return Tariff("test", "Test tariff", ZONE_NAME, versions or (version(),), rounding=rounding)


def reading(when: datetime, m3: str) -> FrozenReading:
    return FrozenReading.of(when, Volume(m3))


def daily(first: date, litres_per_day: Sequence[int], start_litres: int = 0) -> list[FrozenReading]:
    """A freeze at each local midnight from `first`, the register growing by each day's use."""
    register = start_litres
    out = [FrozenReading(at(first.year, first.month, first.day), register)]
    for offset, used in enumerate(litres_per_day, start=1):
        register += used
        day = first + timedelta(days=offset)
        out.append(FrozenReading(at(day.year, day.month, day.day), register))
    return out
