"""The platform's DateTime texts, as the vendor's samples write them.

Read: `2017-04-17`, `2017-04-17T10:12:10`, `2018-08-11 10:37:56` and
`2017-05-17T11:17:31.6895023+08:00` (a text without an offset is the
platform's local time). Written: `YYYY-MM-DDTHH:MM:SS` in local time, as in
the GetModel sample (§4.2.4), with a space in the Report push as its sample
(§4.2.12); the login's `expiration` carries its offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2}))?(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?"
)


class BadTime(ValueError):
    """A text that is none of the platform's DateTime forms."""


def read_time(text: str, zone: ZoneInfo) -> datetime:
    """An aware datetime; BadTime for anything that is not one of the forms above."""
    found = _TEXT.fullmatch(text.strip())
    if found is None:
        raise BadTime(f"{text[:40]!r} is not a date-time such as 2018-08-11 10:37:56")
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    numbers = (int(year), int(month), int(day), int(hour or 0), int(minute or 0))
    try:
        local = datetime(*numbers, int(second or 0), micro, tzinfo=zone)
    except ValueError as exc:
        raise BadTime(f"{text[:40]!r}: {exc}") from None
    if offset is None:
        return local
    if offset == "Z":
        return local.replace(tzinfo=UTC)
    digits = offset[1:].replace(":", "")
    shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return local.replace(tzinfo=timezone(-shift if offset[0] == "-" else shift))


def read_day(text: str, zone: ZoneInfo) -> date:
    """The local date of a DateTime text (a cycle's start)."""
    return read_time(text, zone).astimezone(zone).date()


def write_time(instant: datetime, zone: ZoneInfo, *, sep: str = "T") -> str:
    """Local time as the samples write it: `T` in records (§4.2.4), a space in reports (§4.2.12)."""
    if instant.tzinfo is None:
        raise ValueError("write_time needs an aware datetime")
    return instant.astimezone(zone).strftime(f"%Y-%m-%d{sep}%H:%M:%S")


def write_day(day: date) -> str:
    """A date as a C# DateTime at midnight."""
    return datetime.combine(day, time(0)).strftime("%Y-%m-%dT%H:%M:%S")
