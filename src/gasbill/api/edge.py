"""The HTTP edge's own guards: what every request must pass before any route runs.

`EdgeGuard` answers, before routing, authentication or parsing:

- 413 for a staff API body over `MAX_STAFF_BODY` (declared or streamed: an
  unauthenticated 200 MB POST costs a few kilobytes, not the whole body);
- 400 for a staff API JSON body nested deeper than `MAX_DEPTH`;
- 422 for a NUL character anywhere in the path or the query string of the
  staff or the platform API (PostgreSQL text cannot hold one).

The field types here are the same rules for bodies: `Text` refuses NUL,
`Instant` and `CalendarDay` keep date-times inside years a utility meets
(converting 0001-01-01+08:00 to UTC would leave what a datetime holds).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import AfterValidator, AwareDatetime, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gasbill.adapters.platform.push_models import nests_deeper_than, no_nul
from gasbill.api.errors import error_response
from gasbill.api.platform.envelope import PlatformFailure, failed
from gasbill.api.policy import API
from gasbill.domain.money import MoneyLimits

MAX_STAFF_BODY = 1024 * 1024  # bytes: the largest staff request is a few kilobytes
MAX_DEPTH = 32  # the deepest staff body nests three levels
FIRST_YEAR, LAST_YEAR = 1900, 2199


def _sane_instant(value: datetime) -> datetime:
    # the year as written (the OpenAPI pattern can see only that); its UTC instant then
    # lies within a day of it, so no conversion overflows
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")
    return value


def _sane_day(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be between {FIRST_YEAR}-01-01 and {LAST_YEAR}-12-31")
    return value


NO_NUL = r"^[^\x00]*$"
# the shared text type of both APIs' requests: the pattern shows in OpenAPI too
Text = Annotated[str, Field(pattern=NO_NUL), AfterValidator(no_nul)]
SANE_YEAR = {"pattern": r"^(19\d\d|2[01]\d\d)-"}  # what OpenAPI shows of the years' bound
Instant = Annotated[
    AwareDatetime, AfterValidator(_sane_instant), Field(json_schema_extra=SANE_YEAR)
]
CalendarDay = Annotated[date, AfterValidator(_sane_day), Field(json_schema_extra=SANE_YEAR)]


def _is_staff(path: str) -> bool:
    return path == API or path.startswith(API + "/")


def _has_nul(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(query)


class EdgeGuard:
    """Pure ASGI middleware: size, depth and NUL checks before anything else runs."""

    def __init__(
        self, app: ASGIApp, *, max_body: int = MAX_STAFF_BODY, max_depth: int = MAX_DEPTH
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        staff = _is_staff(path)
        if (staff or path.startswith("/api/")) and _has_nul(scope):
            message = "the path or query holds a NUL character"
            if staff:
                await error_response(422, "invalid_request", message)(scope, receive, send)
            else:
                await failed(PlatformFailure(422, message))(scope, receive, send)
            return
        if not staff or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        body = await self._read(scope, receive)
        if body is None:
            too_large = f"the body is larger than {self.max_body} bytes"
            await error_response(413, "payload_too_large", too_large)(scope, receive, send)
            return
        if nests_deeper_than(body, self.max_depth):
            deep = f"the JSON body nests deeper than {self.max_depth} levels"
            await error_response(400, "bad_request", deep)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to be over the limit."""
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """The body read already, once; after it the client's own messages (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


EDGE_RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"description": "Malformed: bad JSON, nested too deep, a bad header."},
    "413": {"description": f"The body is larger than {MAX_STAFF_BODY} bytes."},
    "422": {"description": "A field is invalid; `details` lists which."},
    "503": {"description": "Busy: another transaction held the rows; retry."},
}


def _idempotency_key_required(operation: dict[str, Any]) -> None:
    """Money's Idempotency-Key is optional to FastAPI only so that its absence gets our own
    400 (`idempotency_key_required`); the document says it is required, and its form."""
    for parameter in operation.get("parameters", []):
        if parameter.get("in") == "header" and parameter.get("name") == "Idempotency-Key":
            parameter["required"] = True
            parameter["schema"] = {"type": "string", "pattern": "^[\\x21-\\x7e]{1,100}$"}


def _money_bounds(schemas: dict[str, Any], limits: MoneyLimits) -> None:
    """The configured maxima of one payment, refund and adjustment (config [money]), so a
    generated amount above them is known to be refused."""
    one_payment = min(limits.payment_fen, limits.top_up_fen)
    for name, field, most, signed in (
        ("PaymentIn", "amount_fen", one_payment, False),
        ("AccountIn", "initial_fen", one_payment, False),  # the first payment
        ("RefundIn", "amount_fen", limits.refund_fen, False),
        ("AdjustmentIn", "amount_fen", limits.adjustment_fen, True),
    ):
        amount = schemas.get(name, {}).get("properties", {}).get(field)
        if amount is not None:
            amount["maximum"] = most
            if signed:
                amount["minimum"] = -most


def truthful_openapi(app: Any, is_public: Any, money: MoneyLimits | None = None) -> None:
    """Make the app's OpenAPI say what the edge does.

    Every staff operation documents the edge's 400, 413, 422 and 503; the
    login documents 429; operations the policy table makes public (the
    login) need no bearer token; amounts show the configured maxima.
    """
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema  # type: ignore[no-any-return]
        schema: dict[str, Any] = original()
        for path, operations in schema.get("paths", {}).items():
            if not _is_staff(path):
                continue
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                for status, answer in EDGE_RESPONSES.items():
                    responses.setdefault(status, answer)
                _idempotency_key_required(operation)
                if is_public(method.upper(), path):
                    operation["security"] = []
                    responses.pop("403", None)
                    responses.setdefault("429", {"description": "Too many failed logins."})
        if money is not None:
            _money_bounds(schema.get("components", {}).get("schemas", {}), money)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
