"""Administration: staff users and roles, tariffs and their versions, campaigns, settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.secret import masked
from gasbill.service import credentials, staff
from gasbill.service.campaign_progress import campaign_progress, campaigns
from gasbill.web.pages.common import attempt, ctx_of, form_text, go, uow_of
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX + "/admin", include_in_schema=False)


def _users_page(
    request: Request,
    error: str | None = None,
    status: int = 200,
    values: dict[str, str] | None = None,
) -> Response:
    users = staff.list_users(uow_of(request))
    return render(
        request,
        "users.html",
        status,
        users=users,
        error=error,
        values=values or {"role": "clerk"},
        done=request.query_params.get("done"),
        roles=staff.ROLES,
    )


@router.get("/users")
def users(request: Request, user: WebUser) -> Response:
    return _users_page(request)


@router.post("/users")
async def user_add(request: Request, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("username", "role")}
    password = form.get("password")
    ctx = ctx_of(request)
    _, error = attempt(
        lambda: staff.add_user(
            uow_of(request),
            username=values["username"],
            password=password if isinstance(password, str) else "",
            role=values["role"],
            passwords=ctx.passwords,
            actor=user.username,
            now=ctx.clock(),
        )
    )
    if error:
        return _users_page(request, error, 422, values)
    return go("/admin/users?done=added")


@router.post("/users/{user_id}/{action}")
async def user_action(request: Request, user_id: int, action: str, user: WebUser) -> Response:
    """deactivate, activate, role, unlock or password: each the use case the API's route calls."""
    form = await request.form()
    run = _user_action(request, user_id, action, form, user.username)
    if run is None:
        return render(request, "message.html", 404, message=gettext(request, "Not found."))
    _, error = attempt(run)
    if error:
        return _users_page(request, error, 422)
    return go(f"/admin/users?done={action}")


def _user_action(
    request: Request, user_id: int, action: str, form: Any, actor: str
) -> Callable[[], object] | None:
    ctx = ctx_of(request)
    uow = uow_of(request)
    now = ctx.clock()
    if action == "deactivate":
        return lambda: staff.deactivate_user(uow, user_id, actor=actor, now=now)
    if action == "activate":
        return lambda: staff.activate_user(uow, user_id, actor=actor, now=now)
    if action == "role":
        role = form_text(form, "role")
        return lambda: staff.change_role(uow, user_id, role, actor=actor, now=now)
    if action == "unlock":
        return lambda: credentials.unlock_user(uow, user_id, actor=actor, now=now)
    if action == "password":
        password = form.get("password")
        return lambda: credentials.reset_password(
            uow,
            user_id,
            password=password if isinstance(password, str) else "",
            passwords=ctx.passwords,
            actor=actor,
            now=now,
        )
    return None


@router.get("/tariffs")
def tariffs(request: Request, user: WebUser) -> Response:
    ctx = ctx_of(request)
    now = ctx.clock()
    rows = []
    for tariff in ctx.catalog.all():
        current = None
        try:
            current = tariff.version_index_at(now)
        except Exception:
            current = None
        rows.append((tariff, current))
    return render(request, "tariffs.html", tariffs=rows)


@router.get("/campaigns")
def campaign_list(request: Request, user: WebUser, show: int = 0) -> Response:
    found = campaigns(uow_of(request))
    detail = None
    if show:
        try:
            detail = campaign_progress(uow_of(request), show)
        except LookupError:
            detail = None
    return render(request, "campaigns.html", campaigns=found, detail=detail)


@router.get("/settings")
def settings(request: Request, user: WebUser) -> Response:
    return render(request, "settings.html", sections=masked(ctx_of(request).settings))
