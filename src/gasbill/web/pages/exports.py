"""Downloads of ledger lines, payments and the reconciliation, as CSV or XLSX."""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.domain.money import Money
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_report import CSV_COLUMNS, finding_json
from gasbill.web import views
from gasbill.web.pages.common import ctx_of, uow_of
from gasbill.web.pages.dayend import _download
from gasbill.web.render import PREFIX, gettext, local_time
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX + "/exports", include_in_schema=False)
MAX_ROWS = 100_000


def _period(request: Request) -> tuple[datetime | None, datetime | None]:
    zone = ctx_of(request).settings.app.timezone
    start, end = request.query_params.get("start", ""), request.query_params.get("end", "")
    since = views.local_day(date.fromisoformat(start), zone)[0] if start else None
    until = views.local_day(date.fromisoformat(end), zone)[1] if end else None
    return since, until


def _lines(request: Request, kinds: tuple[str, ...], name: str, fmt: str) -> Response:
    try:
        since, until = _period(request)
    except ValueError:
        return Response(gettext(request, "Dates are YYYY-MM-DD."), status_code=422)
    if fmt not in ("csv", "xlsx"):
        return Response(status_code=422)
    number = request.query_params.get("account", "")[:30]
    with uow_of(request) as uow:
        found = views.transfer_rows(
            uow, account_number=number, kinds=kinds, since=since, until=until, limit=MAX_ROWS
        )
    show = local_time(request)
    t = partial(gettext, request)
    header = [
        t("Time"),
        t("Kind"),
        t("Account"),
        t("From"),
        t("To"),
        t("Amount (yuan)"),
        t("Status"),
        t("By"),
        t("Reason"),
        t("Channel"),
        t("Transfer"),
    ]
    rows: list[list[Any]] = [
        [
            show(r["at"], "%Y-%m-%d %H:%M:%S"),
            r["kind"],
            r["account_number"],
            r["debit"],
            r["credit"],
            Money.of_fen(r["amount_fen"]).value,
            r["status"],
            r["actor"],
            r["reason"],
            r["channel"],
            r["id"],
        ]
        for r in found
    ]
    return _download(header, rows, name, fmt)


@router.get("/ledger")
def ledger_lines(request: Request, user: WebUser, fmt: str = "csv") -> Response:
    kind = request.query_params.get("kind", "")
    return _lines(request, (kind,) if kind else (), "ledger", fmt)


@router.get("/payments")
def payments(request: Request, user: WebUser, fmt: str = "csv") -> Response:
    return _lines(request, ("payment", "refund"), "payments", fmt)


@router.get("/reconciliation")
def reconciliation(request: Request, user: WebUser, fmt: str = "csv") -> Response:
    if fmt not in ("csv", "xlsx"):
        return Response(status_code=422)
    ctx = ctx_of(request)
    report = reconcile(uow_of(request), ctx.catalog, codec=ctx.codec, as_of=ctx.clock())
    rows: list[list[Any]] = []
    for line in report.lines:
        for found in line.findings:
            f = finding_json(found)
            rows.append(
                [
                    line.account_id,
                    line.account_number,
                    line.company_no,
                    line.meter_comm_no,
                    line.agrees,
                    str(found.check),
                    f["agrees"],
                    f["cause"] or "",
                    f["at"] or "",
                    f["source"],
                    f["meter"],
                    f["expected"],
                    f["difference"] or "",
                    f["note"],
                ]
            )
    return _download(list(CSV_COLUMNS), rows, "reconciliation", fmt)
