"""A tariff's timeline: the regimes a reading interval may have to be split across.

A regime is a stretch of time with one local day, one billing cycle, one
tariff version and one price set. Regimes start at every local midnight and
at every version's `effective_from`; cycle and season changes fall on local
midnights, so they are among those. Rating looks the regimes up by bisection
instead of recomputing calendars for every reading, and the timeline is built
a calendar year at a time and shared by every account on the tariff.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gasbill.domain.cycles import Cycle, local_midnight
from gasbill.domain.tariff import Tariff

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
NO_VERSION = -1


def to_us(instant: datetime) -> int:
    """Microseconds since the epoch of an aware instant: exact, integer."""
    return (instant - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


class Regime(NamedTuple):
    start_us: int
    day: date  # the local day this stretch belongs to
    version_index: int  # NO_VERSION before the tariff's first version
    cycle: Cycle | None  # None where no version is in force
    prices_milli: tuple[int, ...]


class Piece(NamedTuple):
    """Part of a reading interval (from_us, to_us] that lies in one regime."""

    from_us: int
    to_us: int
    litres: int
    regime: Regime


class Timeline:
    def __init__(self, tariff: Tariff) -> None:
        self.tariff = tariff
        self.zone = ZoneInfo(tariff.zone)
        self._starts: list[int] = []
        self._regimes: list[Regime] = []
        self._years: tuple[int, int] | None = None
        self._version_us = [to_us(v.effective_from) for v in tariff.versions]
        self._group_start_us = self._cycle_group_starts()
        self._cycles: dict[tuple[int, int], Cycle] = {}

    # -- building -----------------------------------------------------------
    def _cycle_group_starts(self) -> list[int]:
        """For each version, when its run of versions with the same cycle rule began."""
        starts: list[int] = []
        for i, version in enumerate(self.tariff.versions):
            if i and version.cycle == self.tariff.versions[i - 1].cycle:
                starts.append(starts[-1])
            else:
                starts.append(self._version_us[i] if i else -(2**62))
        return starts

    def _group_end_us(self, index: int) -> int:
        versions = self.tariff.versions
        for j in range(index + 1, len(versions)):
            if versions[j].cycle != versions[index].cycle:
                return self._version_us[j]
        return 2**62

    def _regime_at(self, start_us: int, day: date) -> Regime:
        index = bisect_right(self._version_us, start_us) - 1
        if index < 0:
            return Regime(start_us, day, NO_VERSION, None, ())
        version = self.tariff.versions[index]
        cycle_from, cycle_to = version.cycle.bounds(day)
        begin = max(to_us(local_midnight(cycle_from, self.zone)), self._group_start_us[index])
        end = min(to_us(local_midnight(cycle_to, self.zone)), self._group_end_us(index))
        cycle = self._cycles.get((begin, end))
        if cycle is None:
            cycle = Cycle(from_us(begin), from_us(end), self.tariff.zone)
            self._cycles[(begin, end)] = cycle
        prices = tuple(p.milli for p in version.prices_in_month(day.month))
        return Regime(start_us, day, index, cycle, prices)

    def _build(self, first_year: int, last_year: int) -> None:
        starts: list[int] = []
        regimes: list[Regime] = []
        day = date(first_year, 1, 1)
        end = date(last_year + 1, 1, 1)
        midnight = to_us(local_midnight(day, self.zone))
        while day < end:
            next_day = day + timedelta(days=1)
            next_midnight = to_us(local_midnight(next_day, self.zone))
            points = [midnight] + [v for v in self._version_us if midnight < v < next_midnight]
            for point in points:
                starts.append(point)
                regimes.append(self._regime_at(point, day))
            day, midnight = next_day, next_midnight
        self._starts, self._regimes = starts, regimes
        self._years = (first_year, last_year)

    def ensure(self, from_us: int, to_us_: int) -> None:
        """Make sure regimes cover (from_us, to_us_] with a day to spare each side."""
        first = from_us_to_year(from_us - 86_400_000_000, self.zone)
        last = from_us_to_year(to_us_ + 86_400_000_000, self.zone)
        if self._years is not None and self._years[0] <= first and last <= self._years[1]:
            return
        if self._years is not None:
            first, last = min(first, self._years[0]), max(last, self._years[1])
        self._build(first, last)

    # -- lookup ---------------------------------------------------------------
    def pieces(self, from_us: int, to_us_: int, litres: int) -> list[Piece]:
        """Split (from_us, to_us_] across regimes, litres in proportion to time.

        Proportion only matters across a gap: a reading on a boundary makes
        the boundary an interval end, so no split happens there.
        """
        starts = self._starts
        i = bisect_right(starts, from_us) - 1
        if i + 1 >= len(starts) or starts[i + 1] >= to_us_:
            return [Piece(from_us, to_us_, litres, self._regimes[i])]
        j = i
        spans: list[tuple[int, int, Regime]] = []
        while j < len(starts) and starts[j] < to_us_:
            lo = max(from_us, starts[j])
            hi = min(to_us_, starts[j + 1]) if j + 1 < len(starts) else to_us_
            spans.append((lo, hi, self._regimes[j]))
            j += 1
        shares = split_in_proportion(litres, [hi - lo for lo, hi, _ in spans])
        return [
            Piece(lo, hi, share, regime)
            for (lo, hi, regime), share in zip(spans, shares, strict=True)
        ]


def from_us_to_year(us: int, zone: ZoneInfo) -> int:
    return from_us(us).astimezone(zone).year


def split_in_proportion(total: int, weights: list[int]) -> list[int]:
    """Integer shares of `total` proportional to `weights`, summing exactly to `total`.

    The running total is what is rounded: the share up to each boundary is
    total × (weight so far ÷ all weight), rounded to the unit (halves up),
    and each part is the difference between its two boundaries. So no stretch
    of a gap, however long, gains or loses more than half a litre against its
    exact share, and leftovers never pile up at one end (a gap over a year end
    or a price change must not lean towards either side).
    """
    if any(weight < 0 for weight in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ValueError("weights must add up to a positive number")
    shares = []
    elapsed = 0
    assigned = 0
    for weight in weights:
        elapsed += weight
        running = (2 * total * elapsed + weight_sum) // (2 * weight_sum)
        shares.append(running - assigned)
        assigned = running
    return shares
