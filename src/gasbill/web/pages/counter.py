"""The counter: find a customer, add one, open an account, and the exceptions queue."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.repositories.exceptions import ExceptionRepository
from gasbill.api.staff.schemas import (
    AccountIn,
    ConflictDecisionIn,
    CustomerIn,
    PaymentIn,
    ResolutionIn,
)
from gasbill.domain.accounts import BillingMode
from gasbill.domain.money import Volume
from gasbill.service.accounts import NewAccount, create_customer
from gasbill.service.commands.actions import cancel_command, retry_command
from gasbill.service.exceptions import resolve_exception
from gasbill.service.opening import open_with_payment
from gasbill.service.push_conflicts import accept_correction, dismiss_conflict, list_conflicts
from gasbill.web import views
from gasbill.web.forms import FormProblem, fen_from_yuan, validated
from gasbill.web.pages.common import attempt, ctx_of, form_text, go, uow_of
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX, include_in_schema=False)
CHANNELS = ("cash", "card", "wechat", "alipay", "bank")


@router.get("/customers")
def customers(request: Request, user: WebUser, q: str = "") -> Response:
    q = q.strip()[:100]
    found = views.find_customers(uow_of(request), q) if q else []
    return render(request, "customers.html", q=q, found=found)


@router.get("/customers/new")
def customer_form(request: Request, user: WebUser) -> Response:
    return render(request, "customer_new.html", error=None, values={})


@router.post("/customers/new")
async def customer_add(request: Request, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("name", "phone", "address")}

    def run() -> Any:
        body = validated(CustomerIn, values)
        return create_customer(uow_of(request), **body.model_dump(), actor=user.username)

    customer, error = attempt(run)
    if error or customer is None:
        return render(request, "customer_new.html", 422, error=error, values=values)
    return go(f"/accounts/new?customer_id={customer.id}")


FIELDS = (
    "customer_id",
    "number",
    "billing_mode",
    "tariff_id",
    "meter_comm_no",
    "opening_register",
    "persons",
    "initial",
    "channel",
    "key",
)


@router.get("/accounts/new")
def account_form(request: Request, user: WebUser, customer_id: str = "") -> Response:
    values = {
        "customer_id": customer_id,
        "billing_mode": "meter",
        "persons": "1",
        "opening_register": "0",
        "initial": "0",
        "channel": "cash",
        "key": uuid.uuid4().hex,
    }
    return _account_page(request, values, None)


def _account_page(request: Request, values: dict[str, str], error: str | None) -> Response:
    ctx = ctx_of(request)
    customer = None
    if values.get("customer_id", "").isdigit():
        with uow_of(request) as uow:
            customer = uow.accounts.customer(int(values["customer_id"]))
    return render(
        request,
        "account_new.html",
        422 if error else 200,
        values=values,
        error=error,
        customer=customer,
        tariffs=ctx.catalog.all(),
        channels=CHANNELS,
    )


@router.post("/accounts/new")
async def account_open(request: Request, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in FIELDS}
    ctx = ctx_of(request)
    now = ctx.clock()
    today = now.astimezone(ZoneInfo(ctx.settings.app.timezone)).date()

    def run() -> Any:
        body = validated(
            AccountIn,
            {
                "customer_id": values["customer_id"] or None,
                "number": values["number"],
                "company_no": ctx.settings.platform.company_no,
                "billing_mode": values["billing_mode"],
                "tariff_id": values["tariff_id"],
                "opened_on": today,
                "meter_comm_no": values["meter_comm_no"],
                "opening_register": values["opening_register"] or "0",
                "bound_at": now,
                "persons": values["persons"] or "1",
            },
        )
        initial = fen_from_yuan(values["initial"] or "0", gettext(request, "First payment"))
        if initial < 0:
            raise FormProblem(gettext(request, "The first payment cannot be negative."))
        channel = values["channel"] or "cash"
        if initial:
            validated(PaymentIn, {"amount_fen": initial, "channel": channel})
        return open_with_payment(
            uow_of(request),
            _new_account(body, now),
            initial_fen=initial,
            channel=channel,
            idempotency_key=f"web-open:{values['key'] or uuid.uuid4().hex}"[:100],
            actor=user.username,
            now=now,
            catalog=ctx.catalog,
            policy=ctx.commands,
            limits=ctx.settings.money.limits(),
        )

    opened, error = attempt(run)
    if error or opened is None:
        return _account_page(request, values, error)
    return go(f"/accounts/{opened.account.id}")


def _new_account(body: AccountIn, now: datetime) -> NewAccount:
    return NewAccount(
        customer_id=body.customer_id,
        number=body.number,
        company_no=body.company_no,
        billing_mode=BillingMode(body.billing_mode),
        tariff_id=body.tariff_id,
        opened_on=body.opened_on,
        meter_comm_no=body.meter_comm_no,
        opening_register=Volume(body.opening_register),
        bound_at=body.bound_at or now,
        persons=body.persons,
        warning_fen=body.warning_fen,
        cutoff_fen=body.cutoff_fen,
        reopen_fen=body.reopen_fen,
    )


@router.get("/exceptions")
def exceptions(request: Request, user: WebUser, status: str = "open") -> Response:
    status = status if status in ("open", "resolved", "all") else "open"
    with uow_of(request) as uow:
        rows = ExceptionRepository(uow.session).find(
            status=None if status == "all" else status, account_id=None, offset=0, limit=200
        )
        commands = CommandStore(uow.session).needing_attention(200)
    conflicts = list_conflicts(uow_of(request), status="open" if status == "open" else None)
    if status == "resolved":
        conflicts = [c for c in conflicts if c.conflict.status != "open"]
    return render(
        request,
        "exceptions.html",
        rows=rows,
        commands=commands,
        conflicts=conflicts,
        shown=status,
        message=request.query_params.get("done"),
    )


@router.post("/exceptions/{exception_id}/resolve")
async def exception_resolve(request: Request, exception_id: int, user: WebUser) -> Response:
    form = await request.form()
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(ResolutionIn, {"resolution": form_text(form, "resolution")})
        return resolve_exception(
            uow_of(request),
            exception_id,
            resolution=body.resolution,
            actor=user.username,
            now=ctx.clock(),
        )

    _, error = attempt(run)
    if error:
        return render(request, "message.html", 422, message=error)
    return go("/exceptions?done=resolved")


@router.post("/exceptions/conflicts/{conflict_id}/accept")
async def conflict_accept(request: Request, conflict_id: int, user: WebUser) -> Response:
    """Accept a corrected reading: re-rated from that day, the difference posted."""
    form = await request.form()
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(ConflictDecisionIn, {"reason": form_text(form, "reason")})
        return accept_correction(
            uow_of(request),
            conflict_id,
            reason=body.reason,
            actor=user.username,
            catalog=ctx.catalog,
            max_flow_m3_per_hour=ctx.settings.rating.max_flow_m3_per_hour,
            now=ctx.clock(),
        )

    _, error = attempt(run)
    if error:
        return render(request, "message.html", 422, message=error)
    return go("/exceptions?done=accepted")


@router.post("/exceptions/conflicts/{conflict_id}/dismiss")
async def conflict_dismiss(request: Request, conflict_id: int, user: WebUser) -> Response:
    """Dismiss a corrected reading with a reason: no money moves."""
    form = await request.form()
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(ConflictDecisionIn, {"reason": form_text(form, "reason")})
        return dismiss_conflict(
            uow_of(request), conflict_id, reason=body.reason, actor=user.username, now=ctx.clock()
        )

    _, error = attempt(run)
    if error:
        return render(request, "message.html", 422, message=error)
    return go("/exceptions?done=dismissed")


@router.post("/commands/{command_id}/{action}")
def command_action(request: Request, command_id: int, action: str, user: WebUser) -> Response:
    ctx = ctx_of(request)
    if action not in ("retry", "cancel"):
        return render(request, "message.html", 404, message=gettext(request, "Not found."))
    platform = ctx.platform
    if platform is None:
        message = gettext(request, "The platform's remote-control API is not configured.")
        return render(request, "message.html", 503, message=message)

    def run() -> Any:
        if action == "retry":
            return retry_command(
                uow_of(request),
                platform,
                command_id,
                actor=user.username,
                now=ctx.clock(),
                policy=ctx.commands,
            )
        return cancel_command(
            uow_of(request), platform, command_id, actor=user.username, now=ctx.clock()
        )

    _command, error = attempt(run)
    if error:
        return render(request, "message.html", 422, message=error)
    back = request.query_params.get("account")
    if back and back.isdigit():
        return go(f"/accounts/{back}")
    return go(f"/exceptions?done={action}")
