"""The auditors' reconciliation report: JSON, or CSV with `?format=csv`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from gasbill.api.deps import CatalogDep, NowDep, UowDep
from gasbill.api.policy import API
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_report import render_csv, report_json

router = APIRouter(prefix=f"{API}/reconciliation", tags=["reconciliation"])


@router.get("", summary="Each meter-mode account's meter against the ledger and tariff")
def reconciliation(
    uow: UowDep,
    catalog: CatalogDep,
    now: NowDep,
    company: Annotated[str | None, Query(max_length=10)] = None,
    account_id: Annotated[list[int] | None, Query()] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    report = reconcile(uow, catalog, as_of=now, company_no=company, account_ids=account_id)
    if format == "csv":
        return Response(
            render_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="reconciliation.csv"'},
        )
    return report_json(report)
