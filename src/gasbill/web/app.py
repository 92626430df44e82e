"""Mounting the pages on the app: static files, routers, the answers for login/forbidden/CSRF."""

from __future__ import annotations

from importlib import resources
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from gasbill.web.pages import PAGES
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import CsrfRefused, LoginRequired, PageForbidden, authorize_page

STATIC = f"{PREFIX}/static"
SWAGGER = f"{STATIC}/swagger"


def install_web(app: FastAPI) -> None:
    static = resources.files("gasbill.web") / "static"
    swagger = resources.files("fastapi_offline") / "static"  # Swagger UI 5 (OpenAPI 3.1)
    app.mount(SWAGGER, StaticFiles(directory=str(swagger)), name="swagger")
    app.mount(STATIC, StaticFiles(directory=str(static)), name="static")
    for router in PAGES:
        app.include_router(router, dependencies=[Depends(authorize_page)])
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    _install_docs(app)


def _install_docs(app: FastAPI) -> None:
    """Swagger UI from the package's own copy: /docs works on an isolated intranet."""

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url=f"{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC}/favicon.svg",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


async def _login_required(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("HX-Request"):
        return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/login"})
    if request.method != "GET":
        target = PREFIX + "/"
    return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    return render(request, "forbidden.html", status=403, role=exc.role, what=exc.what)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    message = gettext(request, "The form had expired. Please go back, reload it and try again.")
    return render(request, "message.html", status=403, message=message)
