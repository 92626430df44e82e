"""What every decision shares: its error, time zones and instants.

Instants are compared in UTC: Python compares two datetimes that share a
`tzinfo` by their wall clocks, which is wrong across a DST change. Local
rules (quiet hours, holidays, weekdays) are applied in the utility's zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gasbill.domain.errors import GasbillError

DEFAULT_ZONE = "Asia/Shanghai"


class DecisionError(GasbillError, ValueError):
    """A decision policy or input breaks a rule (a naive time, a positive cut-off, …)."""


def as_zone(zone: str | ZoneInfo) -> ZoneInfo:
    """A zone from its IANA key or as given."""
    if isinstance(zone, ZoneInfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DecisionError(f"unknown time zone {zone!r}") from None


def to_utc(instant: datetime, what: str) -> datetime:
    """The same instant in UTC; a naive datetime is refused, not guessed."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise DecisionError(f"{what} must be an aware datetime, not {instant.isoformat()}")
    return instant.astimezone(UTC)


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock time of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _wall_reached(naive: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants from which the local clock shows `naive` (or later), in order.

    Usually one; two in a fall-back overlap (the wall time happens twice); in
    a spring-forward gap the wall time never shows, and the answer is the
    transition, where the clock jumps past it.
    """
    candidates = sorted({naive.replace(tzinfo=zone, fold=f).astimezone(UTC) for f in (0, 1)})
    real = [c for c in candidates if _wall(c, zone) == naive]
    if real:
        return real
    # In a gap the two folds straddle the transition (the clock shows less than
    # `naive` at the first, more at the second): find it to the second.
    low, high = candidates[0], candidates[-1]
    lo, hi = 0, int((high - low).total_seconds())
    while lo < hi:
        mid = (lo + hi) // 2
        if _wall(low + timedelta(seconds=mid), zone) >= naive:
            hi = mid
        else:
            lo = mid + 1
    return [low + timedelta(seconds=lo)]


def local_instant(day: date, wall: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first UTC instant later than `after` at which the local clock reaches `wall` on `day`."""
    for candidate in _wall_reached(datetime.combine(day, wall), zone):
        if candidate > after:
            return candidate
    # Only reachable inside a DST overlap; step on so the caller always progresses.
    return after + timedelta(minutes=1)
