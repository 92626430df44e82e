"""The staff API under /api/v1: every request is checked against the policy table.

Each area's router carries the full /api/v1 prefix itself, so a matched
route's path is the template the policy table lists.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from gasbill.api.deps import authorize, refuse_unknown_query
from gasbill.api.errors import error_body
from gasbill.api.staff import (
    accounts,
    audit,
    auth,
    campaigns,
    commands,
    customers,
    exceptions,
    money,
    reconciliation,
    settings,
    tariffs,
    true_ups,
    users,
)

ERROR = {
    "description": "The staff API's error shape.",
    "content": {"application/json": {"example": error_body("not_found", "no account 7")}},
}
AREAS = (
    auth,
    users,
    customers,
    accounts,
    money,
    commands,
    campaigns,
    exceptions,
    tariffs,
    settings,
    audit,
    reconciliation,
    true_ups,
)


def install_staff_api(app: FastAPI) -> None:
    for area in AREAS:
        app.include_router(
            area.router,
            dependencies=[Depends(authorize), Depends(refuse_unknown_query)],
            responses={401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR, 422: ERROR},
        )
