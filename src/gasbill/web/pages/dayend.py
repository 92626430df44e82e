"""The clerk's day-end (日结): the day's payments and refunds by channel, printable, exportable."""

from __future__ import annotations

from datetime import date
from functools import partial
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gasbill.domain.money import Money
from gasbill.web import views
from gasbill.web.exports import to_csv, to_xlsx
from gasbill.web.pages.common import ctx_of, uow_of
from gasbill.web.render import PREFIX, gettext, local_time, render
from gasbill.web.session import WebUser

router = APIRouter(prefix=PREFIX, include_in_schema=False)


def _day_and_clerk(request: Request, role: str, username: str) -> tuple[date, str] | None:
    ctx = ctx_of(request)
    text = request.query_params.get("day", "")
    try:
        day = (
            date.fromisoformat(text)
            if text
            else ctx.clock().astimezone(ZoneInfo(ctx.settings.app.timezone)).date()
        )
    except ValueError:
        return None
    # a clerk sees their own day; an auditor may look at any clerk's
    clerk = username if role == "clerk" else request.query_params.get("clerk", "")[:100]
    return day, clerk


@router.get("/day-end")
def day_end(request: Request, user: WebUser) -> Response:
    picked = _day_and_clerk(request, user.role, user.username)
    if picked is None:
        return render(
            request, "message.html", 422, message=gettext(request, "Dates are YYYY-MM-DD.")
        )
    day, clerk = picked
    report = views.day_end(uow_of(request), day, clerk, ctx_of(request).settings.app.timezone)
    return render(request, "dayend.html", d=report)


@router.get("/day-end/export")
def day_end_export(request: Request, user: WebUser, fmt: str = "csv") -> Response:
    picked = _day_and_clerk(request, user.role, user.username)
    if picked is None or fmt not in ("csv", "xlsx"):
        return Response(status_code=422)
    day, clerk = picked
    report = views.day_end(uow_of(request), day, clerk, ctx_of(request).settings.app.timezone)
    show = local_time(request)
    t = partial(gettext, request)
    header = [
        t("Time"),
        t("Kind"),
        t("Account"),
        t("Channel"),
        t("Amount (yuan)"),
        t("By"),
        t("Reason"),
        t("Transfer"),
    ]
    rows = [
        [
            show(r["at"], "%Y-%m-%d %H:%M:%S"),
            t(r["kind"]),
            r["account_number"],
            r["channel"],
            Money.of_fen(r["amount_fen"]).value,
            r["actor"],
            r["reason"],
            r["id"],
        ]
        for r in report.rows
    ]
    rows.append(["", t("Payments"), "", "", Money.of_fen(report.payments_fen).value, "", "", ""])
    rows.append(["", t("Refunds"), "", "", Money.of_fen(report.refunds_fen).value, "", "", ""])
    name = f"day-end-{day}-{clerk or 'all'}"
    return _download(header, rows, name, fmt)


def _download(header: list[str], rows: list[list[object]], name: str, fmt: str) -> Response:
    if fmt == "xlsx":
        return Response(
            to_xlsx(header, rows, title=name),
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
        )
    return Response(
        to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
