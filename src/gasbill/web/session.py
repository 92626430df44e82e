"""Who is at the browser: the session cookie, CSRF tokens, and the policy check for pages.

The session cookie holds a staff token from the same login as the API's
(`service.staff.login`): it is kept in the database only as a keyed digest,
it expires with the token's lifetime and logout revokes it. The cookie is
HttpOnly and SameSite=Strict, and Secure when the page is served over TLS.

CSRF: a random value in its own HttpOnly cookie; every form carries
HMAC(secret, value) and every POST is refused without it (double submit,
signed, so a value planted in the cookie alone is useless).

Authorization is the API's: the matched route is looked up in the one
policy table (`api.policy.POLICY`) and the role must be allowed there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.deps import AppContext, context
from gasbill.api.policy import access_for
from gasbill.service.staff import Identity, authenticate

SESSION = "gasbill_session"
CSRF = "gasbill_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid session: the page answers with the login form."""


class PageForbidden(Exception):
    """The role may not use this page (the policy table says so)."""

    def __init__(self, role: str, what: str) -> None:
        super().__init__(f"the {role} role may not {what}")
        self.role = role
        self.what = what


class CsrfRefused(Exception):
    """A POST without the form's CSRF token."""


def session_identity(request: Request) -> Identity | None:
    """The identity of the session cookie, once per request."""
    if hasattr(request.state, "web_identity"):
        found: Identity | None = request.state.web_identity
        return found
    ctx = context(request)
    token = request.cookies.get(SESSION)
    identity = None
    if token and len(token) <= 200:
        identity = authenticate(UnitOfWork(ctx.engine), token, tokens=ctx.tokens, now=ctx.clock())
    request.state.web_identity = identity
    return identity


def csrf_value(request: Request) -> str:
    """This browser's CSRF cookie value, made (and set on the response later) if missing."""
    value = request.cookies.get(CSRF) or getattr(request.state, "new_csrf", None)
    if not value:
        value = secrets.token_urlsafe(24)
        request.state.new_csrf = value
    return str(value)


def csrf_token(ctx: AppContext, value: str) -> str:
    key = ctx.settings.app.secret_key.get_secret_value().encode("utf-8")
    return hmac.new(key, b"csrf:" + value.encode("utf-8"), hashlib.sha256).hexdigest()


async def check_csrf(request: Request) -> None:
    ctx = context(request)
    value = request.cookies.get(CSRF)
    if not value:
        raise CsrfRefused()
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if not sent or not hmac.compare_digest(sent, csrf_token(ctx, value)):
        raise CsrfRefused()


async def authorize_page(request: Request) -> None:
    """The router's dependency: CSRF on every POST, then the policy table for the route."""
    if request.method == "POST":
        await check_csrf(request)
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    access = access_for(request.method, path) if isinstance(path, str) else None
    if access is not None and access.public:
        return
    identity = session_identity(request)
    if identity is None:
        raise LoginRequired()
    if access is None or not access.allows(identity.role):
        raise PageForbidden(identity.role, f"{request.method} {path}")


def may(role: str | None, method: str, path: str) -> bool:
    """Whether `role` may use the page `path` (a route template): links show only then."""
    access = access_for(method, path)
    if access is None:
        return False
    return access.public or (role is not None and access.allows(role))


def current(request: Request) -> Identity:
    identity = session_identity(request)
    if identity is None:
        raise LoginRequired()
    return identity


WebUser = Annotated[Identity, Depends(current)]


def set_cookie(
    request: Request, response: Response, name: str, value: str, **extra: object
) -> None:
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
        **extra,  # type: ignore[arg-type]
    )
