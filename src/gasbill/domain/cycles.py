"""Billing cycles: calendar-month periods repeating from an anchor date.

A cycle rule `(anchor, months)` starts cycles at local midnight of
`anchor + k·months` months for every integer k. Each start is computed from
the anchor, never chained, so an anchor on the 31st gives Feb 28 (or 29) and
then Mar 31 again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from gasbill.domain.errors import TariffError

MIN_CYCLE_MONTHS = 1
MAX_CYCLE_MONTHS = 120


@dataclass(frozen=True, slots=True)
class CycleRule:
    anchor: date
    months: int

    def __post_init__(self) -> None:
        if not MIN_CYCLE_MONTHS <= self.months <= MAX_CYCLE_MONTHS:
            raise TariffError(
                f"cycle_months must be in {MIN_CYCLE_MONTHS}..{MAX_CYCLE_MONTHS}, not {self.months}"
            )

    def start_of(self, k: int) -> date:
        """The local start date of cycle number k (0 is the one at the anchor)."""
        return _start_of(self.anchor, self.months, k)

    def index_of(self, day: date) -> int:
        """The number of the cycle that contains a local date."""
        months = (day.year - self.anchor.year) * 12 + (day.month - self.anchor.month)
        k = months // self.months
        # The month arithmetic is off by at most one either way at month ends.
        while self.start_of(k) > day:
            k -= 1
        while self.start_of(k + 1) <= day:
            k += 1
        return k

    def bounds(self, day: date) -> tuple[date, date]:
        """Local [start, end) dates of the cycle containing `day`."""
        return _bounds(self, day)

    def month_index(self, cycle_start: date, day: date) -> int:
        """Which monthly step of the cycle starting at `cycle_start` holds `day` (0-based)."""
        i = (day.year - cycle_start.year) * 12 + (day.month - cycle_start.month)
        while cycle_start + relativedelta(months=i) > day:
            i -= 1
        while cycle_start + relativedelta(months=i + 1) <= day:
            i += 1
        return i


# Rating asks for the same few cycles for every reading of every account: remembered,
# since `relativedelta` arithmetic was a tenth of billing's time.
@lru_cache(maxsize=4096)
def _start_of(anchor: date, months: int, k: int) -> date:
    return anchor + relativedelta(months=k * months)


@lru_cache(maxsize=65536)
def _bounds(rule: CycleRule, day: date) -> tuple[date, date]:
    k = rule.index_of(day)
    return rule.start_of(k), rule.start_of(k + 1)


@dataclass(frozen=True, slots=True)
class Cycle:
    """One billing cycle of one account: the instants [start, end), aware."""

    start: datetime
    end: datetime
    zone: str

    @property
    def key(self) -> str:
        """Stable identity for ledger keys: the local start date (and time if not midnight)."""
        return _cycle_key(self.start, self.zone)

    @property
    def first_day(self) -> date:
        return self.start.astimezone(ZoneInfo(self.zone)).date()

    @property
    def last_day(self) -> date:
        return (self.end.astimezone(ZoneInfo(self.zone)) - timedelta(microseconds=1)).date()

    def __str__(self) -> str:
        return f"{self.first_day.isoformat()}..{self.last_day.isoformat()}"


@lru_cache(maxsize=4096)
def _cycle_key(start: datetime, zone: str) -> str:
    local = start.astimezone(ZoneInfo(zone))
    if local.time() == time(0):
        return local.date().isoformat()
    return local.isoformat(timespec="seconds")


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The aware instant a local day starts (zoneinfo resolves gaps forward)."""
    return datetime.combine(day, time(0), tzinfo=zone)
