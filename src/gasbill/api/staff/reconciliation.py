"""The auditors' reconciliation report: JSON, or CSV with `?format=csv`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gasbill.adapters.db.repositories.reconciliation_readings import readings_report
from gasbill.api.deps import CatalogDep, ContextDep, NowDep, UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.policy import API
from gasbill.api.staff.schemas import Id
from gasbill.service.reconciliation import parse_as_of, reconcile
from gasbill.service.reconciliation_report import render_csv, report_json

# the form parse_as_of reads: a date, or a date-time with an optional offset (empty: now)
AS_OF_FORM = (
    r"^(\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?\s*)?$"
)
router = APIRouter(prefix=f"{API}/reconciliation", tags=["reconciliation"])


@router.get(
    "",
    summary="Each account's meter, balance and valve against the ledger and tariff",
    responses={
        200: {
            "description": "The report: JSON, or with `format=csv` a CSV file, one row per "
            "difference (per account with `all`).",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
def reconciliation(
    ctx: ContextDep,
    uow: UowDep,
    catalog: CatalogDep,
    now: NowDep,
    company: Annotated[str | None, Query(max_length=10, pattern=NO_NUL)] = None,
    account_id: Annotated[list[Id] | None, Query()] = None,
    as_of: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=AS_OF_FORM,
            description="A date (its end, in the utility's zone) or an ISO date-time; "
            "default now. Not in the future, and a real calendar day.",
        ),
    ] = None,
    every: Annotated[bool, Query(alias="all", description="List agreeing accounts too")] = False,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    settings = ctx.settings
    report = reconcile(
        uow,
        catalog,
        codec=ctx.codec,
        as_of=parse_as_of(as_of, zone=settings.app.timezone, now=now),
        company_no=company,
        account_ids=account_id,
        decisions=settings.decisions,
        include_agreeing=every or account_id is not None,
    )
    if format == "csv":
        return Response(
            render_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
        )
    return report_json(report)


@router.get(
    "/readings",
    summary="Each meter-mode meter's balance against the ledger at every frozen reading",
    description="A frozen reading taken while a top-up or an opening was on its way is "
    "counted as in flight, not compared; system-mode accounts' readings are only counted.",
)
def readings(uow: UowDep, account_id: Annotated[list[Id] | None, Query()] = None) -> dict[str, Any]:
    return readings_report(uow, account_id)
