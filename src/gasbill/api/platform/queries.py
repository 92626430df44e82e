"""Queries: GetRealModel, GetRealList2, GetHistoryList2, DeviceAlarm/GetList2, DeviceEvent/GetList2.

Each company sees only its own data. Paging by `startrow` (default 0) and
`rowcount` (default 100, at most 1000); `orderby` and `sequence` only take
the names the spec allows.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response

from gasbill.adapters.db.repositories.platform_queries import Page, PlatformQueries, Window
from gasbill.adapters.platform.push_models import (
    DeviceListQuery,
    HistoryQuery,
    MonthWindow,
    RealListQuery,
)
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.times import BadPlatformTime, parse_platform_time
from gasbill.api.platform import serialize
from gasbill.api.platform.envelope import PlatformFailure, envelope, list_envelope
from gasbill.api.platform.routes import Call, PlatformContext, guarded, openapi, validated


def page_of(query: dict[str, str], settings: PushSettings) -> Page:
    start = _count(query, "startrow", 0, minimum=0)
    count = _count(query, "rowcount", settings.default_rowcount, minimum=1)
    if count > settings.max_rowcount:
        raise PlatformFailure(422, f"rowcount: at most {settings.max_rowcount}")
    return Page(start, count)


def _count(query: dict[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise PlatformFailure(422, f"{name}: must be a whole number, not {raw[:20]!r}")
    value = int(raw)
    if value < minimum:
        raise PlatformFailure(422, f"{name}: must be at least {minimum}")
    return value


def month_window(q: MonthWindow, zone: ZoneInfo) -> Window:
    """The window of year/month/start_*/end_*, inside one calendar month (spec §4.4)."""
    parts = (q.start_day, q.start_hour, q.start_minute, q.end_day, q.end_hour, q.end_minute)
    if q.year is None:
        if q.month is not None or any(p is not None for p in parts):
            raise PlatformFailure(422, "year: needed with month, day, hour or minute")
        return Window()
    if q.month is None:
        if any(p is not None for p in parts):
            raise PlatformFailure(422, "month: needed with day, hour or minute")
        return Window(_local(zone, q.year, 1, 1), _local(zone, q.year + 1, 1, 1))
    last_day = calendar.monthrange(q.year, q.month)[1]
    # Calendar rules OpenAPI cannot state are read as a filter would: an end day past the
    # month's last means its end, and a window that starts after it ends holds nothing.
    start_day = q.start_day or 1
    if start_day > last_day:
        return _empty(zone, q.year, q.month)
    start = _local(zone, q.year, q.month, start_day, q.start_hour or 0, q.start_minute or 0)
    end_hour = 23 if q.end_hour is None else q.end_hour
    end_minute = 59 if q.end_minute is None else q.end_minute
    end_day = min(q.end_day or last_day, last_day)
    end = _local(zone, q.year, q.month, end_day, end_hour, end_minute)
    end += timedelta(minutes=1)  # the end minute is included
    if end <= start:
        return _empty(zone, q.year, q.month)
    return Window(start, end)


def _empty(zone: ZoneInfo, year: int, month: int) -> Window:
    first = _local(zone, year, month, 1)
    return Window(first, first)


def _local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def _instant_window(
    start: str | None, end: str | None, names: tuple[str, str], zone: ZoneInfo
) -> Window:
    def parse(text: str | None, name: str) -> datetime | None:
        if text is None:
            return None
        try:
            return parse_platform_time(text, zone)
        except BadPlatformTime as exc:
            raise PlatformFailure(422, f"{name}: {exc}") from None

    first, last = parse(start, names[0]), parse(end, names[1])
    return Window(first, None if last is None else last + timedelta(microseconds=1))


def query_router(router: APIRouter, context: PlatformContext) -> None:
    """The platform's query routes (spec §4.2–§4.8), in the order they are matched."""
    _real_model_route(router, context)
    _real_list_route(router, context)
    _history_route(router, context)
    _device_list_route(router, context, "alarm")
    _device_list_route(router, context, "event")


def _real_model_route(router: APIRouter, context: PlatformContext) -> None:
    """GetRealModel: the latest data of one device."""
    zone = context.platform_zone

    @router.post(
        "/api/Data/MeterData/GetRealModel/{meter_comm_no}",
        openapi_extra=openapi(None),
        summary="Latest data of one device (spec §4.2)",
    )
    async def get_real_model(request: Request, meter_comm_no: str) -> Response:
        def work(call: Call) -> Response:
            with context.uow() as uow:
                row = PlatformQueries(uow.session).latest(call.company_no, meter_comm_no)
            if row is None:
                raise PlatformFailure(404, f"no data for meter {meter_comm_no[:50]}")
            return envelope(serialize.reading(row, zone))

        return await guarded(request, context, needs_body=False, work=work)


def _real_list_route(router: APIRouter, context: PlatformContext) -> None:
    """GetRealList2: the latest data of many devices."""
    zone = context.platform_zone

    @router.post(
        "/api/Data/MeterData/GetRealList2",
        openapi_extra=openapi(RealListQuery, paged=True),
        summary="Latest data of many devices (spec §4.3)",
    )
    async def get_real_list(request: Request) -> Response:
        def work(call: Call) -> Response:
            q = validated(RealListQuery, call.body if call.body is not None else {})
            page = page_of(call.query, context.push)
            acquired = _instant_window(
                q.acq_start_time, q.acq_end_time, ("acq_start_time", "acq_end_time"), zone
            )
            received = _instant_window(
                q.rec_start_time, q.rec_end_time, ("rec_start_time", "rec_end_time"), zone
            )
            with context.uow() as uow:
                total, rows = PlatformQueries(uow.session).latest_list(
                    call.company_no,
                    comm_nos=q.meter_comm_nos,
                    acquired=acquired,
                    received=received,
                    order_by=q.orderby or "meter_comm_no",
                    descending=q.sequence == "desc",
                    page=page,
                )
            return list_envelope(
                [serialize.reading(r, zone) for r in rows], total=total, start=page.start
            )

        return await guarded(request, context, needs_body=False, work=work)


def _history_route(router: APIRouter, context: PlatformContext) -> None:
    """GetHistoryList2: history by acquisition time."""
    zone = context.platform_zone

    @router.post(
        "/api/Data/MeterData/GetHistoryList2",
        openapi_extra=openapi(HistoryQuery, paged=True),
        summary="History by acquisition time (spec §4.4)",
    )
    async def get_history_list(request: Request) -> Response:
        def work(call: Call) -> Response:
            q = validated(HistoryQuery, call.body if call.body is not None else {})
            page = page_of(call.query, context.push)
            with context.uow() as uow:
                total, rows = PlatformQueries(uow.session).history(
                    call.company_no,
                    comm_no=q.meter_comm_no,
                    data_type=q.data_type,
                    acquired=month_window(q, zone),
                    page=page,
                )
            return list_envelope(
                [serialize.reading(r, zone) for r in rows], total=total, start=page.start
            )

        return await guarded(request, context, needs_body=False, work=work)


def _device_list_route(router: APIRouter, context: PlatformContext, kind: str) -> None:
    """GetList2 of DeviceAlarm or DeviceEvent (`kind`: alarm or event)."""
    zone = context.platform_zone
    path = "DeviceAlarm" if kind == "alarm" else "DeviceEvent"

    @router.post(
        f"/api/Data/{path}/GetList2",
        openapi_extra=openapi(DeviceListQuery, paged=True),
        summary=f"{path} list (spec §4.6/§4.8)",
        name=f"{kind}_list",
    )
    async def get_list(request: Request) -> Response:
        def work(call: Call) -> Response:
            q = validated(DeviceListQuery, call.body if call.body is not None else {})
            page = page_of(call.query, context.push)
            with context.uow() as uow:
                total, rows = PlatformQueries(uow.session).device_records(
                    kind,
                    call.company_no,
                    comm_no=q.device_comm_no,
                    device_type=q.device_type,
                    when=month_window(q, zone),
                    page=page,
                )
            return list_envelope(
                [serialize.device_record(kind, r, zone) for r in rows],
                total=total,
                start=page.start,
            )

        return await guarded(request, context, needs_body=False, work=work)
