"""The staff API's one error shape, and the handlers that map errors to it.

Every error under /api/v1 answers

    {"error": {"code": "not_found", "message": "no account 7", "details": [...]}}

`code` is stable and meant for programs, `message` for people, `details` lists
field problems (`{"loc": [...], "message": ..., "type": ...}`) where there are
any. Requests outside /api/v1 keep FastAPI's own answers: the platform-facing
endpoints have their own envelope and map their own errors.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from gasbill.adapters.db.uow import is_retryable
from gasbill.adapters.tariffs.errors import TariffNotFound
from gasbill.api.policy import API
from gasbill.domain import errors as domain
from gasbill.domain.accounts import AccountError
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.credentials import WrongPassword
from gasbill.service.staff import LoginRefused, StaffError, TooManyAttempts

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An answer the edge itself decides: 400, 401, 403, 404, 409 …"""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = list(details)
        self.headers = dict(headers or {})


def unauthorized(message: str = "a valid bearer token is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


# The most specific class in an error's MRO decides; order does not matter.
DOMAIN_ERRORS: Mapping[type[Exception], tuple[int, str]] = {
    domain.GasbillError: (422, "rejected"),
    AccountError: (422, "invalid_request"),
    StaffError: (422, "invalid_request"),
    NotFound: (404, "not_found"),
    Conflict: (409, "conflict"),
    LoginRefused: (401, "login_failed"),
    TooManyAttempts: (429, "too_many_attempts"),
    WrongPassword: (403, "wrong_password"),
    domain.InvalidAmount: (422, "invalid_amount"),
    domain.TariffError: (422, "tariff_error"),
    TariffNotFound: (404, "not_found"),
    domain.LedgerError: (422, "ledger_error"),
    domain.InvalidTransfer: (422, "invalid_transfer"),
    domain.AmountOutOfRange: (422, "amount_out_of_range"),
    domain.IdempotencyConflict: (409, "idempotency_conflict"),
    domain.DuplicateTransferId: (409, "conflict"),
    domain.HoldAlreadyResolved: (409, "already_resolved"),
    domain.InvalidResolution: (409, "invalid_resolution"),
    domain.ReversalRefused: (409, "reversal_refused"),
    domain.AlreadyReversed: (409, "already_reversed"),
    domain.UnknownTransfer: (404, "not_found"),
    domain.UnknownLedgerAccount: (404, "not_found"),
    domain.OverdraftRefused: (409, "insufficient_funds"),
    domain.LedgerInvariantBroken: (500, "ledger_invariant_broken"),
}

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
}


def error_body(code: str, message: str, details: Sequence[Any] = ()) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": list(details)}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: Sequence[Any] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(error_body(code, message, details)), status, headers=dict(headers or {})
    )


def domain_status(exc: Exception) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[cls]
    return 500, "internal"


def _staff(request: Request) -> bool:
    return request.url.path == API or request.url.path.startswith(API + "/")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    if not _staff(request):
        raise exc  # not ours to shape: a 500 unless the endpoint maps it itself
    status, code = domain_status(exc)
    if status >= 500:
        log.error("ledger invariant broken on %s", request.url.path, exc_info=exc)
        return error_response(status, code, "internal error; the operators were told")
    headers = {}
    if isinstance(exc, TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    if isinstance(exc, LoginRefused):
        headers["WWW-Authenticate"] = "Bearer"
    message = str(exc)
    if isinstance(exc, TariffNotFound):  # the server's directory is not the caller's business
        message = f"no tariff {exc.wanted!r} (available: {', '.join(exc.available) or 'none'})"
    return error_response(status, code, message, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not _staff(request):
        return await request_validation_exception_handler(request, exc)
    details = [
        {
            "loc": list(error.get("loc", ())),
            "message": str(error.get("msg", "")).removeprefix("Value error, "),
            "type": error.get("type", ""),
        }
        for error in exc.errors()
    ]
    summary = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['message']}" for d in details)
    return error_response(422, "invalid_request", summary or "invalid request", details)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not _staff(request):
        return await http_exception_handler(request, exc)
    code = HTTP_CODES.get(exc.status_code, "error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
    return error_response(exc.status_code, code, str(exc.detail), headers=headers)


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """All methods served at the path: Starlette's Allow names only the first route's.

    The path's own template in OpenAPI decides, a literal one before one
    with parameters (`/tariffs/reload` is not `/tariffs/{tariff_id}`), so
    Allow says what the document says; a path outside the document has
    each method put to the app's routes as the router would (`matches`).
    """
    templates = [
        (template.count("{"), operations)
        for template, operations in request.app.openapi().get("paths", {}).items()
        if _template(template).fullmatch(request.url.path)
    ]
    if templates:
        operations = min(templates, key=lambda found: found[0])[1]
        return [m for m in METHODS if m.lower() in operations]
    served = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            served.append(method)
    return served


def _template(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(template)))


async def _integrity_error(request: Request, exc: Exception) -> Response:
    if not _staff(request):
        raise exc
    # A unique key taken by a concurrent request, which the service's own check missed.
    log.info("integrity error on %s: %s", request.url.path, exc)
    return error_response(409, "conflict", "the request conflicts with a concurrent change")


async def _unexpected(request: Request, exc: Exception) -> Response:
    if is_retryable(exc):
        # another transaction held the rows even after the retries: busy, not broken
        log.warning("lock conflict on %s after retries: %s", request.url.path, exc)
        if not _staff(request):
            return PlainTextResponse("busy; retry later", 503, headers={"Retry-After": "1"})
        return error_response(
            503, "busy", "the server is busy; retry the request", headers={"Retry-After": "1"}
        )
    log.exception("unexpected error on %s", request.url.path, exc_info=exc)
    if not _staff(request):
        return PlainTextResponse("Internal Server Error", 500)
    return error_response(500, "internal", "internal error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(domain.GasbillError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected)
