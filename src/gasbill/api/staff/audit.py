"""The audit trail: the latest entries, and a check of the whole hash chain."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query

from gasbill.adapters.db.tables.staff import AuditEntry
from gasbill.api.deps import UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.policy import API
from gasbill.api.staff.schemas import AuditOut, AuditVerifyOut, ChainBreakOut
from gasbill.service.audit import verify_audit

router = APIRouter(prefix=f"{API}/audit", tags=["audit"])


def audit_out(row: AuditEntry) -> AuditOut:
    assert row.seq is not None
    return AuditOut(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        before=json.loads(row.before),
        after=json.loads(row.after),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


@router.get("", summary="The latest audit entries, newest first")
def latest(
    uow: UowDep,
    entity: Annotated[str | None, Query(max_length=50, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[AuditOut]:
    with uow:
        rows = uow.audit.latest(limit, entity=entity)
    return [audit_out(r) for r in rows]


@router.get("/verify", summary="Walk the whole chain: does every entry follow from the last?")
def verify(uow: UowDep) -> AuditVerifyOut:
    result = verify_audit(uow)
    return AuditVerifyOut(
        ok=result.ok,
        entries=result.entries,
        breaks=[ChainBreakOut(seq=b.seq, problem=b.problem) for b in result.breaks],
    )
