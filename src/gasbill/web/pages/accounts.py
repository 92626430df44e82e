"""One account at the counter: its page, payments with receipts, refunds, meters, closing."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.uow import retried
from gasbill.api.staff.schemas import ClosureIn, PaymentIn, RefundIn, ReplacementIn
from gasbill.domain.money import Volume
from gasbill.service import ledger
from gasbill.service.accounts import Replacement
from gasbill.service.closing import close_account
from gasbill.service.payments import take_payment, top_up_progress
from gasbill.service.replacing import replace_account_meter
from gasbill.web import statements, views
from gasbill.web.charts import column_chart
from gasbill.web.forms import fen_from_yuan, validated
from gasbill.web.pages.common import attempt, ctx_of, form_text, go, uow_of
from gasbill.web.pages.counter import CHANNELS
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX, include_in_schema=False)
FINAL = ("confirmed", "failed", "cancelled", "needs attention")


def _view(request: Request, account_id: int) -> views.AccountView | None:
    ctx = ctx_of(request)
    return views.account_view(
        uow_of(request), account_id, settings=ctx.settings, catalog=ctx.catalog, now=ctx.clock()
    )


def _missing(request: Request) -> Response:
    return render(request, "message.html", 404, message=gettext(request, "No such account."))


@router.get("/accounts/{account_id}")
def account(request: Request, account_id: int, user: WebUser) -> Response:
    view = _view(request, account_id)
    if view is None:
        return _missing(request)
    points = [
        (
            r["at"].astimezone(ZoneInfo(ctx_of(request).settings.app.timezone)).strftime("%m-%d"),
            Volume.of_litres(r["use"]).value,
        )
        for r in view.readings
        if r["use"] is not None
    ]
    chart = column_chart(points, title=gettext(request, "Daily use"), unit="m³")
    return render(
        request,
        "account.html",
        v=view,
        chart=chart,
        final=FINAL,
        done=request.query_params.get("done"),
    )


@router.get("/accounts/{account_id}/pay")
def pay_form(request: Request, account_id: int, user: WebUser) -> Response:
    view = _view(request, account_id)
    if view is None:
        return _missing(request)
    values = {"amount": "", "channel": "cash", "memo": "", "key": uuid.uuid4().hex}
    return render(request, "pay.html", v=view, values=values, error=None, channels=CHANNELS)


@router.post("/accounts/{account_id}/pay")
async def pay(request: Request, account_id: int, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("amount", "channel", "memo", "key")}
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(
            PaymentIn,
            {
                "amount_fen": fen_from_yuan(values["amount"], gettext(request, "Amount")),
                "channel": values["channel"],
                "memo": values["memo"],
            },
        )
        key = f"web:{values['key'] or uuid.uuid4().hex}"[:100]
        return retried(
            lambda: take_payment(
                uow_of(request),
                account_id=account_id,
                amount_fen=body.amount_fen,
                channel=body.channel,
                idempotency_key=key,
                actor=user.username,
                now=ctx.clock(),
                policy=ctx.commands,
                memo=body.memo,
                decide=ctx.decide,
                limits=ctx.settings.money.limits(),
            )
        )

    outcome, error = attempt(run)
    if error or outcome is None:
        view = _view(request, account_id)
        if view is None:
            return _missing(request)
        return render(
            request, "pay.html", 422, v=view, values=values, error=error, channels=CHANNELS
        )
    return go(f"/receipts/{outcome.payment.id}")


@router.get("/receipts/{transfer_id}")
def receipt(request: Request, transfer_id: str, user: WebUser) -> Response:
    found = statements.receipt(uow_of(request), transfer_id[:40])
    if found is None:
        return render(request, "message.html", 404, message=gettext(request, "No such payment."))
    view = _view(request, found["account_id"])
    return render(request, "receipt.html", r=found, v=view, final=FINAL)


@router.get("/top-ups/{command_id}")
def top_up(request: Request, command_id: int, user: WebUser) -> Response:
    """The live part of a receipt or account page: polled until the top-up ends."""
    with uow_of(request) as uow:
        command = CommandStore(uow.session).get(command_id)
        progress = top_up_progress(command) if command is not None else None
    if progress is None:
        return Response(status_code=404)
    return render(request, "topup.html", t=progress, final=FINAL)


@router.get("/accounts/{account_id}/refund")
def refund_form(request: Request, account_id: int, user: WebUser) -> Response:
    view = _view(request, account_id)
    if view is None:
        return _missing(request)
    values = {"amount": "", "channel": "cash", "reason": "", "key": uuid.uuid4().hex}
    return render(request, "refund.html", v=view, values=values, error=None, channels=CHANNELS)


@router.post("/accounts/{account_id}/refund")
async def refund(request: Request, account_id: int, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("amount", "channel", "reason", "key")}
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(
            RefundIn,
            {
                "amount_fen": fen_from_yuan(values["amount"], gettext(request, "Amount")),
                "channel": values["channel"],
                "reason": values["reason"],
            },
        )
        key = f"web:{values['key'] or uuid.uuid4().hex}"[:100]
        return retried(
            lambda: ledger.refund(
                uow_of(request),
                account_id=account_id,
                amount_fen=body.amount_fen,
                channel=body.channel,
                reason=body.reason,
                actor=user.username,
                idempotency_key=key,
                limits=ctx.settings.money.limits(),
            )
        )

    _, error = attempt(run)
    if error:
        view = _view(request, account_id)
        if view is None:
            return _missing(request)
        return render(
            request, "refund.html", 422, v=view, values=values, error=error, channels=CHANNELS
        )
    return go(f"/accounts/{account_id}?done=refund")


@router.get("/accounts/{account_id}/replace-meter")
def replace_form(request: Request, account_id: int, user: WebUser) -> Response:
    view = _view(request, account_id)
    if view is None:
        return _missing(request)
    values = {
        "old_final_register": "",
        "new_comm_no": "",
        "new_opening_register": "0",
        "reason": "",
    }
    return render(request, "replace.html", v=view, values=values, error=None)


@router.post("/accounts/{account_id}/replace-meter")
async def replace(request: Request, account_id: int, user: WebUser) -> Response:
    form = await request.form()
    keys = ("old_final_register", "new_comm_no", "new_opening_register", "reason")
    values = {k: form_text(form, k) for k in keys}
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(
            ReplacementIn,
            {**values, "at": ctx.clock(), "reason": values["reason"] or "meter replaced"},
        )
        return replace_account_meter(
            uow_of(request),
            Replacement(
                account_id=account_id,
                at=body.at,
                old_final_register=Volume(body.old_final_register),
                new_comm_no=body.new_comm_no,
                new_opening_register=Volume(body.new_opening_register),
                reason=body.reason,
            ),
            idempotency_key=f"web-replace:{account_id}:{body.new_comm_no}:{uuid.uuid4().hex}",
            actor=user.username,
            now=body.at,
            catalog=ctx.catalog,
            policy=ctx.commands,
        )

    _, error = attempt(run)
    if error:
        view = _view(request, account_id)
        if view is None:
            return _missing(request)
        return render(request, "replace.html", 422, v=view, values=values, error=error)
    return go(f"/accounts/{account_id}?done=replaced")


@router.get("/accounts/{account_id}/close")
def close_form(request: Request, account_id: int, user: WebUser) -> Response:
    view = _view(request, account_id)
    if view is None:
        return _missing(request)
    values = {"final_register": "", "channel": "cash"}
    return render(request, "close.html", v=view, values=values, error=None, channels=CHANNELS)


@router.post("/accounts/{account_id}/close")
async def close(request: Request, account_id: int, user: WebUser) -> Response:
    """The API's closure (POST /accounts/{id}/closure): final reading, credit back, valve shut."""
    form = await request.form()
    values = {k: form_text(form, k) for k in ("final_register", "channel")}
    ctx = ctx_of(request)

    def run() -> Any:
        body = validated(
            ClosureIn,
            {"final_register": values["final_register"] or None, "channel": values["channel"]},
        )
        return close_account(
            uow_of(request),
            account_id,
            final_register=Volume(body.final_register) if body.final_register else None,
            channel=body.channel,
            idempotency_key=f"close-{account_id}",
            actor=user.username,
            now=ctx.clock(),
            catalog=ctx.catalog,
            policy=ctx.commands,
        )

    _, error = attempt(run)
    if error:
        view = _view(request, account_id)
        if view is None:
            return _missing(request)
        return render(
            request, "close.html", 422, v=view, values=values, error=error, channels=CHANNELS
        )
    return go(f"/accounts/{account_id}?done=closed")


@router.get("/accounts/{account_id}/statement")
def statement(
    request: Request, account_id: int, user: WebUser, start: str = "", end: str = ""
) -> Response:
    ctx = ctx_of(request)
    today = ctx.clock().astimezone(ZoneInfo(ctx.settings.app.timezone)).date()
    try:
        first = date.fromisoformat(start) if start else today.replace(day=1)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        return render(
            request, "message.html", 422, message=gettext(request, "Dates are YYYY-MM-DD.")
        )
    if last < first or last - first > timedelta(days=366):
        return render(
            request,
            "message.html",
            422,
            message=gettext(request, "A statement covers one day to one year."),
        )
    found = statements.statement(
        uow_of(request), account_id, first, last, ctx.settings.app.timezone
    )
    if found is None:
        return _missing(request)
    return render(request, "statement.html", s=found, micro=Decimal("0.000001"))
