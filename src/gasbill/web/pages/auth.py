"""Logging in and out of the pages, the home page of each role, and the language switch."""

from __future__ import annotations

import secrets
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from gasbill.service import credentials, staff
from gasbill.web import i18n
from gasbill.web.pages.common import attempt, ctx_of, form_text, go, safe_next, uow_of
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import CSRF, SESSION, WebUser, session_identity, set_cookie

router = APIRouter(prefix=PREFIX, include_in_schema=False)

HOME = {"clerk": "/customers", "auditor": "/reconciliation", "admin": "/admin/users"}


@router.get("/")
def home(user: WebUser) -> RedirectResponse:
    return go(HOME.get(user.role, "/customers"))


@router.get("/login")
def login_form(request: Request, next: str = "") -> Response:
    if session_identity(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", next=safe_next(next), error=None, username="")


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    username = form_text(form, "username")[:64]
    password = form.get("password")
    target = safe_next(form_text(form, "next"))
    ctx = ctx_of(request)
    if not username or not isinstance(password, str) or not 1 <= len(password) <= 1024:
        error = gettext(request, "Enter your username and password.")
        return render(request, "login.html", 422, next=target, error=error, username=username)
    try:
        issued = staff.login(
            uow_of(request),
            username=username,
            password=password,
            client=request.client.host if request.client else "unknown",
            passwords=ctx.passwords,
            tokens=ctx.tokens,
            ttl=timedelta(minutes=ctx.settings.staff.token_ttl_minutes),
            limits=ctx.limits,
            now=ctx.clock(),
        )
    except staff.TooManyAttempts:
        error = gettext(request, "Too many failed logins: try again later.")
        return render(request, "login.html", 429, next=target, error=error, username=username)
    except staff.LoginRefused:
        error = gettext(request, "Wrong username or password.")
        return render(request, "login.html", 401, next=target, error=error, username=username)
    if target == PREFIX + "/":
        target = PREFIX + HOME.get(issued.identity.role, "/customers")
    response = RedirectResponse(target, status_code=303)
    ttl = int((issued.expires_at - ctx.clock()).total_seconds())
    set_cookie(request, response, SESSION, issued.token, max_age=ttl)
    set_cookie(request, response, CSRF, secrets.token_urlsafe(24))  # a new one per session
    return response


@router.post("/logout")
def logout(request: Request, user: WebUser) -> Response:
    ctx = ctx_of(request)
    staff.logout(uow_of(request), user, now=ctx.clock())
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(SESSION, path="/")
    return response


@router.get("/lang/{language}")
def language(request: Request, language: str, next: str = "") -> Response:
    """Remember the language for a year; back to the page the user was on."""
    response = RedirectResponse(safe_next(next), status_code=303)
    set_cookie(request, response, i18n.COOKIE, i18n.pick(language), max_age=365 * 24 * 3600)
    return response


@router.get("/me/password")
def password_form(request: Request, user: WebUser) -> Response:
    done = request.query_params.get("done")
    return render(request, "password.html", error=None, done=done)


@router.post("/me/password")
async def password_change(request: Request, user: WebUser) -> Response:
    """Any staff member's own change, as PUT /api/v1/me/password makes it; this session stays."""
    form = await request.form()
    current, new, again = (form.get(k) for k in ("current", "new", "again"))
    ctx = ctx_of(request)
    if not all(isinstance(v, str) for v in (current, new, again)) or new != again:
        differ = gettext(request, "The two new passwords differ.")
        return render(request, "password.html", 422, error=differ, done=None)
    _, error = attempt(
        lambda: credentials.change_own_password(
            uow_of(request),
            user.user_id,
            current=str(current),
            new=str(new),
            passwords=ctx.passwords,
            limits=ctx.limits,
            now=ctx.clock(),
            keep_token=user.token_hash,
        )
    )
    if error:
        return render(request, "password.html", 422, error=error, done=None)
    return go("/me/password?done=password")
