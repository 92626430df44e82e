"""`POST /api/Conf/CtrlData/Report` (spec §5.3): the platform reports command outcomes.

Push-key authenticated (our decision: the original names no auth for it).
The body is an array; each item is answered in order with
{ctrl_id, meter_comm_no, result, message}. A report for a ctrl_id we do
not know yet is kept and answered `true`; repeated or out-of-order reports
change nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from gasbill.adapters.db.uow import retried
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.push_models import Text50, describe
from gasbill.api.platform.envelope import PlatformFailure, envelope
from gasbill.api.platform.routes import Call, PlatformContext, guarded, key_headers
from gasbill.domain.commands import CtrlState
from gasbill.service.commands.reports import ReportItem, receive_report


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    ctrl_id: StrictInt = Field(gt=0)
    meter_comm_no: Text50
    ctrl_time: str | None = None
    ctrl_timeout: str | None = None
    ctrl_type: str | None = Field(default=None, max_length=200)
    ctrl_state: StrictInt
    ctrl_state_msg: str | None = Field(default=None, max_length=50)
    ctrl_feedback_msg: str | None = Field(default=None, max_length=2000)
    return_data: Any = None


# The vendor's document sets no size for a batch: a day's outcomes for a large fleet
# come in one request, so the report has its own limits, well above a push's.
REPORT_MAX_ITEMS = 5000
REPORT_MAX_BYTES = 8 * 1024 * 1024
# Each item is judged on its own and answered in its place (a bad one is `failed`
# there, the rest still count), so the body's schema is any array: saying more would
# claim a refusal the endpoint does not make. An item's fields are ReportIn's.
REPORT_SCHEMA = {
    "type": "array",
    "items": {"description": "one outcome: " + ", ".join(ReportIn.model_fields)},
    "maxItems": REPORT_MAX_ITEMS,
}


def report_router(router: APIRouter, context: PlatformContext) -> None:
    codec = Codec(context.platform_zone)

    @router.post(
        "/api/Conf/CtrlData/Report",
        summary="Command outcomes reported by the platform (spec §5.3)",
        openapi_extra={
            "parameters": key_headers(),
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": REPORT_SCHEMA}},
            },
        },
    )
    async def report(request: Request) -> Response:
        def work(call: Call) -> Response:
            if not isinstance(call.body, list):
                raise PlatformFailure(400, "the body must be a JSON array of reports")
            if len(call.body) > REPORT_MAX_ITEMS:
                raise PlatformFailure(422, f"at most {REPORT_MAX_ITEMS} reports in one request")
            return envelope([_one(call.company_no, item) for item in call.body])

        def _one(company_no: str, raw: Any) -> dict[str, Any]:
            ctrl_id = raw.get("ctrl_id") if isinstance(raw, dict) else None
            comm_no = raw.get("meter_comm_no") if isinstance(raw, dict) else None
            answer = {
                "ctrl_id": ctrl_id if isinstance(ctrl_id, int) else 0,
                "meter_comm_no": comm_no if isinstance(comm_no, str) else "",
                "result": False,
                "message": "",
            }
            try:
                item = ReportIn.model_validate(raw)
                state = CtrlState(item.ctrl_state)
            except ValidationError as exc:
                return answer | {"message": describe(exc)}
            except ValueError:
                return answer | {"message": f"ctrl_state: unknown state {raw.get('ctrl_state')}"}
            message = retried(
                lambda: receive_report(
                    context.uow(),
                    codec,
                    company_no,
                    ReportItem(
                        item.ctrl_id,
                        item.meter_comm_no,
                        state,
                        item.return_data,
                        item.ctrl_feedback_msg or "",
                        raw,
                    ),
                    policy=context.commands,
                    now=context.clock(),
                )
            )
            known = not message or message.startswith("kept")
            return answer | {"result": known, "message": message}

        return await guarded(request, context, needs_body=True, work=work, limit=REPORT_MAX_BYTES)
