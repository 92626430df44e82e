"""The platform-facing endpoints (spec §4): pushes in, queries out, in the vendor's envelope.

Bodies are read as bytes and validated here rather than by FastAPI, so that
decimals stay exact, NaN is refused, and every failure — a bad key, bad
JSON, a wrong type, a missing field — gets the platform's `failed` envelope
with a Message naming the field and the problem, and stores nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from gasbill.adapters.db.repositories.readings import reading_transactions
from gasbill.adapters.db.uow import UnitOfWork, is_retryable
from gasbill.adapters.platform.push_models import BadBody, describe, parse_json
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.api.platform.auth import company_of
from gasbill.api.platform.envelope import PlatformFailure, failed
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.group_commit import GroupCommit
from gasbill.service.ingest import IngestPolicy, RejectedPush, Stored, write_reading_rows

log = logging.getLogger("gasbill.platform")
Model = TypeVar("Model", bound=BaseModel)
SERVER_FAILED = "the server failed to handle this request; retry later"


@dataclass(frozen=True, slots=True)
class PlatformContext:
    engine: Engine
    push: PushSettings
    platform_zone: ZoneInfo
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    on_frozen_stored: Callable[[], None] | None = None  # wakes the inbox worker
    commands: CommandPolicy = field(default_factory=CommandPolicy)
    readings: GroupCommit[dict[str, Any], Stored] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "readings",
            GroupCommit(
                partial(write_reading_rows, reading_transactions(self.engine)),
                max_batch=self.push.group_commit_max,
                writers=self.push.group_commit_writers,
                run=run_in_threadpool,
            ),
        )

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    @property
    def policy(self) -> IngestPolicy:
        return IngestPolicy(
            self.platform_zone,
            timedelta(minutes=self.push.max_future_minutes),
            parse_time=parse_platform_time,
        )


@dataclass(frozen=True, slots=True)
class Call:
    """An authenticated, size-checked request: who sent it and its parsed body."""

    company_no: str
    body: Any
    query: dict[str, str]


async def accept(
    request: Request, context: PlatformContext, *, needs_body: bool, limit: int | None = None
) -> Call:
    """Authenticate, then read the body up to `limit` bytes ([push] max_body_bytes)."""
    company_no = company_of(request, context.push)
    declared = request.headers.get("content-length")
    limit = limit or context.push.max_body_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PlatformFailure(413, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():  # without a Content-Length, stop at the limit
        size += len(chunk)
        if size > limit:
            raise PlatformFailure(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    body: Any = None
    if needs_body or raw.strip():
        try:
            body = parse_json(raw)
        except BadBody as exc:
            raise PlatformFailure(400, str(exc)) from None
    query = dict(request.query_params) if request.scope.get("query_string") else {}
    return Call(company_no, body, query)


def validated(model: type[Model], body: Any) -> Model:
    if not isinstance(body, dict):
        raise PlatformFailure(400, f"the body must be a JSON object, not {_json_kind(body)}")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise PlatformFailure(422, describe(exc)) from None


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return f"a {type(value).__name__}"


def failure_envelope(exc: Exception) -> Response:
    """The `failed` envelope for whatever went wrong; anything unforeseen is logged, 500."""
    if isinstance(exc, PlatformFailure):
        return failed(exc)
    if isinstance(exc, RejectedPush):
        return failed(PlatformFailure(422, str(exc)))
    if is_retryable(exc):
        log.warning("platform request met a lock conflict after retries: %s", exc)
        return failed(PlatformFailure(503, "the server is busy; retry later"))
    log.error("platform endpoint failed", exc_info=exc)
    return failed(PlatformFailure(500, SERVER_FAILED))


async def answer(work: Callable[[], Response]) -> Response:
    """Run the sync work in the thread pool; map every failure to the envelope."""
    try:
        return await run_in_threadpool(work)
    except Exception as exc:
        return failure_envelope(exc)


async def guarded(
    request: Request,
    context: PlatformContext,
    *,
    needs_body: bool,
    work: Callable[[Call], Response],
    limit: int | None = None,
) -> Response:
    try:
        call = await accept(request, context, needs_body=needs_body, limit=limit)
    except PlatformFailure as failure:
        return failed(failure)
    return await answer(lambda: work(call))


def key_headers() -> list[dict[str, Any]]:
    return [
        {
            "name": "company_no",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "pattern": "^[0-9]{4}$"},
        },
        {"name": "data_api_key", "in": "header", "required": True, "schema": {"type": "string"}},
    ]


EMPTY = {"type": "string", "enum": [""]}


def paging_parameters() -> list[dict[str, Any]]:
    return [
        {
            "name": "startrow",
            "in": "query",
            "required": False,
            # 9 digits; empty as in the vendor's own `?startrow=&rowcount=`: the default
            "schema": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 999_999_999}, EMPTY]},
        },
        {
            "name": "rowcount",
            "in": "query",
            "required": False,
            "schema": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": 1000}, EMPTY]},
        },
    ]


def openapi(model: type[BaseModel] | None, *, paged: bool = False) -> dict[str, Any]:
    extra: dict[str, Any] = {"parameters": key_headers() + (paging_parameters() if paged else [])}
    if model is not None:
        schema = model.model_json_schema()
        if paged:  # a list query's conditions are all optional: no body, or null, asks for all
            schema = {"anyOf": [schema, {"type": "null"}]}
        extra["requestBody"] = {
            "required": not paged,
            "content": {"application/json": {"schema": schema}},
        }
    return extra


ENVELOPE_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"description": description}
    for code, description in {
        200: "success envelope",
        400: "failed envelope: malformed body",
        401: "failed envelope: bad key",
        404: "failed envelope: not found",
        413: "failed envelope: body too large",
        422: "failed envelope: invalid field",
    }.items()
}
