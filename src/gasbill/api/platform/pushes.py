"""Pushes: MeterData/Add, DeviceAlarm/Add, DeviceEvent/Add (spec §4.1, §4.5, §4.7)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from gasbill.adapters.platform.push_models import AlarmIn, EventIn, MeterDataIn
from gasbill.api.platform.envelope import envelope
from gasbill.api.platform.routes import Call, PlatformContext, guarded, openapi, validated
from gasbill.service.ingest import store_device_record, store_readings


def push_router(router: APIRouter, context: PlatformContext) -> None:
    @router.post(
        "/api/Data/MeterData/Add",
        openapi_extra=openapi(MeterDataIn),
        summary="Push one reading (spec §4.1)",
    )
    async def meter_data_add(request: Request) -> Response:
        def work(call: Call) -> Response:
            reading = validated(MeterDataIn, call.body)
            (stored,) = store_readings(
                context.uow(), call.company_no, [reading], context.policy, now=context.clock()
            )
            if stored.new and reading.data_type == 1 and context.on_frozen_stored is not None:
                context.on_frozen_stored()
            return envelope(stored.id)

        return await guarded(request, context, needs_body=True, work=work)

    def device_push(path: str, model: type[AlarmIn] | type[EventIn], summary: str) -> None:
        @router.post(
            path, openapi_extra=openapi(model), summary=summary, name=path.rsplit("/", 2)[-2]
        )
        async def add(request: Request) -> Response:
            def work(call: Call) -> Response:
                record = validated(model, call.body)
                stored = store_device_record(
                    context.uow(), call.company_no, record, context.policy, now=context.clock()
                )
                return envelope(stored.id)

            return await guarded(request, context, needs_body=True, work=work)

    device_push("/api/Data/DeviceAlarm/Add", AlarmIn, "Push one alarm (spec §4.5)")
    device_push("/api/Data/DeviceEvent/Add", EventIn, "Push one event (spec §4.7)")
