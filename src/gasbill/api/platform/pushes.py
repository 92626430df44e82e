"""Pushes: MeterData/Add, DeviceAlarm/Add, DeviceEvent/Add (spec §4.1, §4.5, §4.7)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gasbill.adapters.platform.push_models import AlarmIn, EventIn, MeterDataIn
from gasbill.api.lanes import Handler
from gasbill.api.platform.envelope import envelope
from gasbill.api.platform.routes import (
    Call,
    PlatformContext,
    accept,
    failure_envelope,
    guarded,
    openapi,
    validated,
)
from gasbill.crashpoints import crash_point
from gasbill.service.ingest import FROZEN, reading_row, store_device_record


def push_router(router: APIRouter, context: PlatformContext) -> dict[str, Handler]:
    """Register the push routes; their handlers by path, for the push lane."""
    handlers: dict[str, Handler] = {}

    @router.post(
        "/api/Data/MeterData/Add",
        openapi_extra=openapi(MeterDataIn),
        summary="Push one reading (spec §4.1)",
    )
    async def meter_data_add(request: Request) -> Response:
        # validated here on the event loop (microseconds); only the write goes to a thread,
        # and concurrent pushes share its transaction (group commit)
        try:
            call = await accept(request, context, needs_body=True)
            reading = validated(MeterDataIn, call.body)
            row = reading_row(call.company_no, reading.record(), context.policy, context.clock())
            stored = await context.readings.submit(row)
        except Exception as exc:
            return failure_envelope(exc)
        crash_point("ingest.after_store")  # stored, not yet answered: pushed again
        if stored.new and reading.data_type == FROZEN and context.on_frozen_stored is not None:
            context.on_frozen_stored()
        return envelope(stored.id)

    handlers["/api/Data/MeterData/Add"] = meter_data_add

    def device_push(path: str, model: type[AlarmIn] | type[EventIn], summary: str) -> None:
        @router.post(
            path, openapi_extra=openapi(model), summary=summary, name=path.rsplit("/", 2)[-2]
        )
        async def add(request: Request) -> Response:
            def work(call: Call) -> Response:
                record = validated(model, call.body)
                stored = store_device_record(
                    context.uow(),
                    call.company_no,
                    record.record(),
                    context.policy,
                    now=context.clock(),
                )
                return envelope(stored.id)

            return await guarded(request, context, needs_body=True, work=work)

        handlers[path] = add

    device_push("/api/Data/DeviceAlarm/Add", AlarmIn, "Push one alarm (spec §4.5)")
    device_push("/api/Data/DeviceEvent/Add", EventIn, "Push one event (spec §4.7)")
    return handlers
