"""A meter's billing cycle (ladder_price.cycle_start, cycle_month) and its local days."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

MAX_CYCLE_MONTHS = 120  # a cycle_month above this is taken as no cycle at all


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The aware instant a local day starts."""
    return datetime.combine(day, time(0), tzinfo=zone)


def _add_months(day: date, months: int) -> date:
    """`day` moved by whole months, clamped to the last day of a shorter month."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + month // 12, month % 12 + 1, 1)
    last = (following - date(year, month, 1)).days
    return date(year, month, min(day.day, last))


def cycle_index(start: date, months: int, day: date) -> int | None:
    """The number of the cycle `day` is in (0 at `start`), None when the meter has no cycle."""
    if not 1 <= months <= MAX_CYCLE_MONTHS:
        return None
    k = ((day.year - start.year) * 12 + day.month - start.month) // months
    while _add_months(start, k * months) > day:
        k -= 1
    while _add_months(start, (k + 1) * months) <= day:
        k += 1
    return k
