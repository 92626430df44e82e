"""The data API's query conditions (§3.1.3, §3.1.4, §3.2.2, §3.3.2) and paging.

`startrow`/`rowcount` from the query string (optional: 0 and 100, at most
1000, as our digest decides); the bodies' conditions as the document lists
them; a year/month/start_*/end_* window on the acquisition (alarm, event)
time inside one calendar month, the end minute included.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from iotsim.envelope import Refused
from iotsim.times import BadTime, read_time

DEFAULT_ROWCOUNT = 100
MAX_ROWCOUNT = 1000
REAL_ORDER = ("meter_comm_no", "acquisition_time", "receive_time", "meter_define_no1",
              "meter_define_no3")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Page:
    start: int = 0
    count: int = DEFAULT_ROWCOUNT


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) on an instant; None is open."""

    start: datetime | None = None
    end: datetime | None = None

    def holds(self, instant: datetime) -> bool:
        return (self.start is None or instant >= self.start) and (
            self.end is None or instant < self.end
        )


def page_of(query: Mapping[str, str]) -> Page:
    def count(name: str, default: int, low: int) -> int:
        raw = query.get(name)
        if raw is None or raw == "":
            return default
        if not raw.isdigit() or len(raw) > 9 or int(raw) < low:
            raise Refused(422, f"{name}: a whole number from {low}, not {raw[:20]!r}")
        return int(raw)

    page = Page(count("startrow", 0, 0), count("rowcount", DEFAULT_ROWCOUNT, 1))
    if page.count > MAX_ROWCOUNT:
        raise Refused(422, f"rowcount: at most {MAX_ROWCOUNT}")
    return page


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Q = TypeVar("Q", bound=_Query)


class RealListQuery(_Query):
    meter_comm_nos: list[str] | None = Field(default=None, max_length=1000)
    acq_start_time: str | None = None
    acq_end_time: str | None = None
    rec_start_time: str | None = None
    rec_end_time: str | None = None
    orderby: str | None = None
    sequence: str | None = None


class MonthQuery(_Query):
    year: StrictInt | None = Field(default=None, ge=2000, le=2100)
    month: StrictInt | None = Field(default=None, ge=1, le=12)
    start_day: StrictInt | None = Field(default=None, ge=1, le=31)
    start_hour: StrictInt | None = Field(default=None, ge=0, le=23)
    start_minute: StrictInt | None = Field(default=None, ge=0, le=59)
    end_day: StrictInt | None = Field(default=None, ge=1, le=31)
    end_hour: StrictInt | None = Field(default=None, ge=0, le=23)
    end_minute: StrictInt | None = Field(default=None, ge=0, le=59)


class HistoryQuery(MonthQuery):
    meter_comm_no: str | None = None
    data_type: StrictInt | None = None


class DeviceListQuery(MonthQuery):
    device_comm_no: str | None = None
    device_type: StrictInt | None = None


def conditions(model: type[Q], body: Any) -> Q:
    """The body's conditions (none: all); 400 for a body that is no object, 422 for a field."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise Refused(400, "the query conditions must be a JSON object", data=None)
    try:
        query = model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise Refused(422, f"{where}: {first['msg']}", data=None) from None
    if isinstance(query, RealListQuery):
        if query.orderby is not None and query.orderby not in REAL_ORDER:
            raise Refused(422, f"orderby: one of {', '.join(REAL_ORDER)}", data=None)
        if query.sequence not in (None, "asc", "desc"):
            raise Refused(422, "sequence: asc or desc", data=None)
    return query


def instant_window(
    start: str | None, end: str | None, names: tuple[str, str], zone: ZoneInfo
) -> Window:
    """From start to end, both included."""

    def read(text: str | None, name: str) -> datetime | None:
        if text is None:
            return None
        try:
            return read_time(text, zone)
        except BadTime as exc:
            raise Refused(422, f"{name}: {exc}", data=None) from None

    first, last = read(start, names[0]), read(end, names[1])
    return Window(first, None if last is None else last + timedelta(microseconds=1))


def month_window(q: MonthQuery, zone: ZoneInfo) -> Window:
    parts = (q.start_day, q.start_hour, q.start_minute, q.end_day, q.end_hour, q.end_minute)
    if q.year is None:
        if q.month is not None or any(p is not None for p in parts):
            raise Refused(422, "year: needed with month, day, hour or minute", data=None)
        return Window()
    if q.month is None:
        if any(p is not None for p in parts):
            raise Refused(422, "month: needed with day, hour or minute", data=None)
        return Window(datetime(q.year, 1, 1, tzinfo=zone), datetime(q.year + 1, 1, 1, tzinfo=zone))
    last_day = calendar.monthrange(q.year, q.month)[1]
    if max(q.start_day or 1, q.end_day or 1) > last_day:
        raise Refused(422, f"start_day/end_day: {q.year}-{q.month:02d} has {last_day} days", None)
    start = datetime(q.year, q.month, q.start_day or 1, q.start_hour or 0, q.start_minute or 0,
                     tzinfo=zone)  # fmt: skip
    end = datetime(
        q.year, q.month, q.end_day or last_day,
        23 if q.end_hour is None else q.end_hour, 59 if q.end_minute is None else q.end_minute,
        tzinfo=zone,
    ) + timedelta(minutes=1)  # fmt: skip
    if end <= start:
        raise Refused(422, "end_day: the window ends before it starts", data=None)
    return Window(start, end)
