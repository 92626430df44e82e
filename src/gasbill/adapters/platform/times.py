"""The platform's datetimes: the forms spec §5.4 lists, naive ones in its zone.

Accepted: `2017-04-17`, `2017-04-17T10:12:10`, `2018-08-11 10:37:56`, and
`2017-05-17T11:17:31.6895023+08:00` (fractions of any length, an optional
offset or Z). Anything else is refused rather than guessed. Written back as
`YYYY-MM-DDTHH:MM:SS` in the platform's zone, as the samples do.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

_FORM = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})?$"
)


class BadPlatformTime(ValueError):
    """A datetime that is not in one of the platform's forms."""


# a sane range for any instant a meter or the platform reports; beyond it the
# conversion to UTC could leave what a datetime holds (0001-01-01+08:00)
FIRST_YEAR, LAST_YEAR = 1900, 2199


def parse_platform_time(text: str, zone: ZoneInfo) -> datetime:
    """An aware UTC datetime from the platform's text; naive text is in `zone`."""
    match = _FORM.match(text.strip())
    if match is None:
        raise BadPlatformTime(
            f"{text!r} is not a date-time like 2018-08-11 10:37:56 or 2017-04-17T10:12:10"
        )
    iso = match["date"] + "T" + (match["time"] or "00:00:00")
    if match["fraction"]:
        iso += "." + match["fraction"][:6].ljust(6, "0")  # microseconds: the rest is noise
    offset = match["offset"]
    if offset:
        iso += "+00:00" if offset == "Z" else offset
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise BadPlatformTime(f"{text!r} is not a valid date-time: {exc}") from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise BadPlatformTime(f"{text!r} is outside the years {FIRST_YEAR} to {LAST_YEAR}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


def format_platform_time(instant: datetime, zone: ZoneInfo) -> str:
    """`YYYY-MM-DDTHH:MM:SS` in the platform's local time."""
    if instant.tzinfo is None:
        raise ValueError("format_platform_time needs an aware datetime")
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M:%S")
