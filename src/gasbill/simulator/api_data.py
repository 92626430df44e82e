"""Query mode (spec §4.2–4.4, 4.6, 4.8): the fleet's data as the platform keeps it.

Key headers (`company_no`, `data_api_key`) as for our own query endpoints,
the same query bodies, paging and month windows (their validation is
shared with `gasbill.api.platform.queries`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request, Response

from gasbill.adapters.db.repositories.platform_queries import Window
from gasbill.adapters.platform.push_models import DeviceListQuery, HistoryQuery, RealListQuery
from gasbill.adapters.platform.times import BadPlatformTime, parse_platform_time
from gasbill.api.platform.auth import company_of
from gasbill.api.platform.envelope import PlatformFailure, envelope, list_envelope
from gasbill.api.platform.queries import month_window, page_of
from gasbill.api.platform.routes import validated
from gasbill.simulator.gate import Gate

DATA = "/api/Data/"


def install_data_routes(app: FastAPI, gate: Gate) -> None:
    sim = gate.sim
    zone = sim.zone

    def check_key(request: Request) -> None:
        company_of(request, sim.keys)

    def window(start: str | None, end: str | None, names: tuple[str, str]) -> Window:
        def parse(text: str | None, name: str) -> Any:
            if text is None:
                return None
            try:
                return parse_platform_time(text, zone)
            except BadPlatformTime as exc:
                raise PlatformFailure(422, f"{name}: {exc}") from None

        first, last = parse(start, names[0]), parse(end, names[1])
        return Window(first, None if last is None else last + timedelta(microseconds=1))

    @app.post(DATA + "MeterData/GetRealModel/{meter_comm_no}", summary="Latest data (§4.2)")
    async def get_real_model(request: Request, meter_comm_no: str) -> Response:
        def work(_: Any) -> Response:
            found = sim.data.latest_of(meter_comm_no)
            if found is None:
                raise PlatformFailure(404, f"no data for meter {meter_comm_no[:50]}")
            return envelope(found)

        return await gate.call(request, work, check=check_key)

    @app.post(DATA + "MeterData/GetRealList2", summary="Latest data of many devices (§4.3)")
    async def get_real_list(request: Request) -> Response:
        def work(body: Any) -> Response:
            q = validated(RealListQuery, body if body is not None else {})
            page = page_of(dict(request.query_params), sim.keys)
            total, rows = sim.data.latest_list(
                comm_nos=q.meter_comm_nos,
                acquired=window(
                    q.acq_start_time, q.acq_end_time, ("acq_start_time", "acq_end_time")
                ),
                received=window(
                    q.rec_start_time, q.rec_end_time, ("rec_start_time", "rec_end_time")
                ),
                order_by=q.orderby or "meter_comm_no",
                descending=q.sequence == "desc",
                page=page,
            )
            return list_envelope(rows, total=total, start=page.start)

        return await gate.call(request, work, check=check_key)

    @app.post(DATA + "MeterData/GetHistoryList2", summary="History by acquisition time (§4.4)")
    async def get_history_list(request: Request) -> Response:
        def work(body: Any) -> Response:
            q = validated(HistoryQuery, body if body is not None else {})
            page = page_of(dict(request.query_params), sim.keys)
            total, rows = sim.data.history(
                comm_no=q.meter_comm_no,
                data_type=q.data_type,
                acquired=month_window(q, zone),
                page=page,
            )
            return list_envelope(rows, total=total, start=page.start)

        return await gate.call(request, work, check=check_key)

    def device_list(kind: str, path: str) -> None:
        @app.post(f"{DATA}{path}/GetList2", summary=f"{path} list (§4.6/§4.8)", name=f"{kind}s")
        async def get_list(request: Request) -> Response:
            def work(body: Any) -> Response:
                q = validated(DeviceListQuery, body if body is not None else {})
                page = page_of(dict(request.query_params), sim.keys)
                total, rows = sim.data.device_records(
                    kind,
                    comm_no=q.device_comm_no,
                    device_type=q.device_type,
                    when=month_window(q, zone),
                    page=page,
                )
                return list_envelope(rows, total=total, start=page.start)

            return await gate.call(request, work, check=check_key)

    device_list("alarm", "DeviceAlarm")
    device_list("event", "DeviceEvent")
