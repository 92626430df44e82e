"""Query mode (§1.2, §3.1.2–§3.1.4, §3.2.2, §3.3.2): the fleet's data as the platform keeps it.

Key headers (`company_no`, `data_api_key`), the document's query conditions,
paging by `startrow`/`rowcount`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from iotsim.envelope import Refused, success, success_list
from iotsim.gate import Gate
from iotsim.queries import (
    DeviceListQuery,
    HistoryQuery,
    RealListQuery,
    conditions,
    instant_window,
    month_window,
    page_of,
)

DATA = "/api/Data/"


def install_data_routes(app: FastAPI, gate: Gate) -> None:
    """The data queries (§3), in the order they are matched."""
    _latest_routes(app, gate)
    _history_route(app, gate)
    _device_list(app, gate, "alarm", "DeviceAlarm", "§3.2.2")
    _device_list(app, gate, "event", "DeviceEvent", "§3.3.2")


def _latest_routes(app: FastAPI, gate: Gate) -> None:
    """GetRealModel and GetRealList2: the latest data of one device or many."""
    sim, zone = gate.sim, gate.sim.zone

    @app.post(DATA + "MeterData/GetRealModel/{meter_comm_no}", summary="Latest data (§3.1.2)")
    async def get_real_model(request: Request, meter_comm_no: str) -> Response:
        def work(_: Any) -> str:
            found = sim.data.latest_of(meter_comm_no)
            if found is None:
                raise Refused(404, f"no data for meter {meter_comm_no[:50]}", data=None)
            return success(found)

        return await gate.call(request, work, check=gate.check_key)

    @app.post(DATA + "MeterData/GetRealList2", summary="Latest data of many devices (§3.1.3)")
    async def get_real_list(request: Request) -> Response:
        def work(body: Any) -> str:
            q = conditions(RealListQuery, body)
            page = page_of(request.query_params)
            total, rows = sim.data.latest_list(
                comm_nos=q.meter_comm_nos,
                acquired=instant_window(
                    q.acq_start_time, q.acq_end_time, ("acq_start_time", "acq_end_time"), zone
                ),
                received=instant_window(
                    q.rec_start_time, q.rec_end_time, ("rec_start_time", "rec_end_time"), zone
                ),
                order_by=q.orderby or "meter_comm_no",
                descending=q.sequence == "desc",
                page=page,
            )
            return success_list(rows, total=total, start=page.start)

        return await gate.call(request, work, check=gate.check_key)


def _history_route(app: FastAPI, gate: Gate) -> None:
    """GetHistoryList2: history by acquisition time."""
    sim, zone = gate.sim, gate.sim.zone

    @app.post(DATA + "MeterData/GetHistoryList2", summary="History by acquisition time (§3.1.4)")
    async def get_history_list(request: Request) -> Response:
        def work(body: Any) -> str:
            q = conditions(HistoryQuery, body)
            page = page_of(request.query_params)
            total, rows = sim.data.history(
                comm_no=q.meter_comm_no,
                data_type=q.data_type,
                acquired=month_window(q, zone),
                page=page,
            )
            return success_list(rows, total=total, start=page.start)

        return await gate.call(request, work, check=gate.check_key)


def _device_list(app: FastAPI, gate: Gate, kind: str, path: str, section: str) -> None:
    """`<path>/GetList2`: the alarms or events (`kind`) by filter, paged."""
    sim, zone = gate.sim, gate.sim.zone

    @app.post(f"{DATA}{path}/GetList2", summary=f"{path} list ({section})", name=f"{kind}s")
    async def get_list(request: Request) -> Response:
        def work(body: Any) -> str:
            q = conditions(DeviceListQuery, body)
            page = page_of(request.query_params)
            total, rows = sim.data.device_records(
                kind,
                comm_no=q.device_comm_no,
                device_type=q.device_type,
                when=month_window(q, zone),
                page=page,
            )
            return success_list(rows, total=total, start=page.start)

        return await gate.call(request, work, check=gate.check_key)
