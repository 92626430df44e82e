"""The audit office: reconciliation charts in yuan, evidence, ledger search, corrections, audit."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.adapters.db.uow import retried
from gasbill.api.staff.schemas import AdjustmentIn, ReversalIn
from gasbill.domain.money import Money
from gasbill.domain.reconciliation import Check
from gasbill.service import ledger
from gasbill.service.audit import verify_audit
from gasbill.service.reconciliation import Report, reconcile
from gasbill.web import statements, views
from gasbill.web.charts import bar_chart
from gasbill.web.forms import fen_from_yuan, validated
from gasbill.web.pages.common import attempt, ctx_of, form_text, go, uow_of
from gasbill.web.render import PREFIX, gettext, render
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX, include_in_schema=False)
PRICE_CHECKS = (Check.PRICE,)  # differences in yuan per m³, not in yuan: not summed


def yuan_by(report: Report, key: Any) -> dict[str, Decimal]:
    """Differences in yuan (magnitudes) of the money checks, grouped by key(line, finding)."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for line in report.lines:
        for found in line.findings:
            if found.agrees or found.check in PRICE_CHECKS or found.difference is None:
                continue
            value = found.difference
            amount = value.value if isinstance(value, Money) else Decimal(str(value))
            sums[key(line, found)] += abs(amount)
    return dict(sums)


def _over_time(request: Request, days: int) -> list[tuple[str, Decimal]]:
    """The total difference in yuan at the end of each of the last `days` local days."""
    ctx = ctx_of(request)
    zone = ZoneInfo(ctx.settings.app.timezone)
    today = ctx.clock().astimezone(zone).date()
    points = []
    for back in range(days - 1, -1, -1):
        day = today - timedelta(days=back)
        as_of = min(views.local_day(day, ctx.settings.app.timezone)[1], ctx.clock())
        report = reconcile(uow_of(request), ctx.catalog, codec=ctx.codec, as_of=as_of)
        points.append(
            (day.strftime("%m-%d"), sum(yuan_by(report, lambda *_: "").values(), Decimal(0)))
        )
    return points


@router.get("/reconciliation")
def reconciliation(request: Request, user: WebUser, days: int = 7) -> Response:
    ctx = ctx_of(request)
    days = max(1, min(days, 31))
    report = reconcile(uow_of(request), ctx.catalog, codec=ctx.codec, as_of=ctx.clock())
    t = partial(gettext, request)
    causes = yuan_by(report, lambda line, found: t(str(found.cause)))
    areas = yuan_by(report, lambda line, found: line.company_no)
    trend = _over_time(request, days)
    charts = [
        bar_chart(
            sorted(causes.items()) or [(t("none"), Decimal(0))],
            title=t("Differences by cause"),
            unit=t("yuan"),
        ),
        bar_chart(
            sorted(areas.items()) or [(t("none"), Decimal(0))],
            title=t("Differences by area (company)"),
            unit=t("yuan"),
        ),
        bar_chart(trend, title=t("Differences over the last days"), unit=t("yuan")),
    ]
    to_act = [line for line in report.lines if not line.agrees]
    return render(request, "reconciliation.html", r=report, charts=charts, lines=to_act, days=days)


@router.get("/reconciliation/{account_id}")
def evidence(request: Request, account_id: int, user: WebUser) -> Response:
    ctx = ctx_of(request)
    report = reconcile(
        uow_of(request), ctx.catalog, codec=ctx.codec, as_of=ctx.clock(), account_ids=[account_id]
    )
    view = views.account_view(
        uow_of(request), account_id, settings=ctx.settings, catalog=ctx.catalog, now=ctx.clock()
    )
    if view is None:
        return render(request, "message.html", 404, message=gettext(request, "No such account."))
    line = report.lines[0] if report.lines else None
    return render(request, "evidence.html", line=line, v=view)


@router.get("/ledger")
def ledger_search(request: Request, user: WebUser) -> Response:
    q = {
        k: request.query_params.get(k, "")[:100]
        for k in ("account", "kind", "actor", "start", "end")
    }
    zone = ctx_of(request).settings.app.timezone
    try:
        since = views.local_day(date.fromisoformat(q["start"]), zone)[0] if q["start"] else None
        until = views.local_day(date.fromisoformat(q["end"]), zone)[1] if q["end"] else None
    except ValueError:
        return render(
            request, "message.html", 422, message=gettext(request, "Dates are YYYY-MM-DD.")
        )
    with uow_of(request) as uow:
        rows = views.transfer_rows(
            uow,
            account_number=q["account"],
            kinds=(q["kind"],) if q["kind"] else (),
            actor=q["actor"],
            since=since,
            until=until,
            limit=500,
        )
    kinds = ("payment", "charge", "true_up", "top_up", "adjustment", "refund", "reversal", "hold")
    return render(request, "ledger.html", q=q, transfers=rows, kinds=kinds, query=request.url.query)


@router.get("/accounts/{account_id}/adjust")
def adjust_form(request: Request, account_id: int, user: WebUser) -> Response:
    return _adjust_page(
        request,
        account_id,
        {"amount": "", "target": "prepaid", "reason": "", "key": uuid.uuid4().hex},
        None,
    )


def _adjust_page(
    request: Request, account_id: int, values: dict[str, str], error: str | None
) -> Response:
    ctx = ctx_of(request)
    view = views.account_view(
        uow_of(request), account_id, settings=ctx.settings, catalog=ctx.catalog, now=ctx.clock()
    )
    if view is None:
        return render(request, "message.html", 404, message=gettext(request, "No such account."))
    return render(request, "adjust.html", 422 if error else 200, v=view, values=values, error=error)


@router.post("/accounts/{account_id}/adjust")
async def adjust(request: Request, account_id: int, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("amount", "target", "reason", "key")}

    def run() -> Any:
        body = validated(
            AdjustmentIn,
            {
                "amount_fen": fen_from_yuan(values["amount"], gettext(request, "Amount")),
                "target": values["target"],
                "reason": values["reason"],
            },
        )
        key = f"web:{values['key'] or uuid.uuid4().hex}"[:100]
        return retried(
            lambda: ledger.post_adjustment(
                uow_of(request),
                account_id=account_id,
                amount_fen=body.amount_fen,
                target=body.target,
                reason=body.reason,
                actor=user.username,
                idempotency_key=key,
                limits=ctx_of(request).settings.money.limits(),
            )
        )

    _, error = attempt(run)
    if error:
        return _adjust_page(request, account_id, values, error)
    return go(f"/accounts/{account_id}?done=adjusted")


@router.get("/transfers/{transfer_id}/reverse")
def reverse_form(request: Request, transfer_id: str, user: WebUser) -> Response:
    return _reverse_page(request, transfer_id[:40], {"reason": "", "key": uuid.uuid4().hex}, None)


def _reverse_page(
    request: Request, transfer_id: str, values: dict[str, str], error: str | None
) -> Response:
    with uow_of(request) as uow:
        found = statements.transfer_rows_by_id(uow, transfer_id)
    if found is None:
        return render(request, "message.html", 404, message=gettext(request, "Not found."))
    return render(
        request, "reverse.html", 422 if error else 200, t=found, values=values, error=error
    )


@router.post("/transfers/{transfer_id}/reverse")
async def reverse(request: Request, transfer_id: str, user: WebUser) -> Response:
    form = await request.form()
    values = {k: form_text(form, k) for k in ("reason", "key")}
    transfer_id = transfer_id[:40]

    def run() -> Any:
        body = validated(ReversalIn, {"reason": values["reason"]})
        key = f"web:{values['key'] or uuid.uuid4().hex}"[:100]
        return retried(
            lambda: ledger.reverse_transfer(
                uow_of(request),
                transfer_id=transfer_id,
                reason=body.reason,
                actor=user.username,
                idempotency_key=key,
            )
        )

    _done, error = attempt(run)
    if error:
        return _reverse_page(request, transfer_id, values, error)
    return go("/ledger?done=reversed")


@router.get("/audit")
def audit_log(request: Request, user: WebUser, entity: str = "", limit: int = 100) -> Response:
    entity = entity[:50]
    limit = max(1, min(limit, 1000))
    with uow_of(request) as uow:
        rows = uow.audit.latest(limit, entity=entity or None)
    verified = verify_audit(uow_of(request))
    return render(request, "audit.html", rows=rows, verified=verified, entity=entity)
