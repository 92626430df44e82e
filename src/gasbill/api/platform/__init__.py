"""The platform-facing API, exactly in the vendor's format (spec §4, §5.3)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.exception_handlers import http_exception_handler
from starlette.exceptions import HTTPException as StarletteHTTPException

from gasbill.api.errors import allowed_methods
from gasbill.api.lanes import LaneApp
from gasbill.api.platform.envelope import PlatformFailure, failed
from gasbill.api.platform.pushes import push_router
from gasbill.api.platform.queries import query_router
from gasbill.api.platform.reports import report_router
from gasbill.api.platform.routes import ENVELOPE_RESPONSES, PlatformContext

__all__ = ["PlatformContext", "install_platform_api"]


PLATFORM_PREFIXES = ("/api/Data/", "/api/Conf/")


def install_platform_api(app: FastAPI, context: PlatformContext) -> None:
    router = APIRouter(tags=["platform"], responses=ENVELOPE_RESPONSES)
    pushes = push_router(router, context)
    query_router(router, context)
    report_router(router, context)
    app.include_router(router)
    if isinstance(app, LaneApp):
        app.lanes.update(pushes)
    _envelope_http_errors(app)


def _envelope_http_errors(app: FastAPI) -> None:
    """A wrong method or path under the platform's prefixes still gets the envelope."""
    previous = app.exception_handlers.get(StarletteHTTPException, http_exception_handler)

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if request.url.path.startswith(PLATFORM_PREFIXES):
            response = failed(PlatformFailure(exc.status_code, str(exc.detail)))
            response.headers.update(exc.headers or {})
            if exc.status_code == 405:
                response.headers["Allow"] = ", ".join(allowed_methods(request))
            return response
        return await previous(request, exc)  # type: ignore[misc,no-any-return]

    app.add_exception_handler(StarletteHTTPException, handler)
