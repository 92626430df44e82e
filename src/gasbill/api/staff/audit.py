"""The audit trail: the latest entries, and a check of the whole hash chain."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from gasbill.adapters.audit_anchor import AnchorFile, anchor_path
from gasbill.adapters.db.tables.staff import AuditEntry
from gasbill.api.deps import ContextDep, UowDep
from gasbill.api.edge import NO_NUL
from gasbill.api.policy import API
from gasbill.api.staff import schemas
from gasbill.api.staff.schemas import ChainBreakOut
from gasbill.service.audit import verify_audit

router = APIRouter(prefix=f"{API}/audit", tags=["audit"])


class AuditOut(schemas.AuditOut):
    hash_version: int  # 1: the first scheme (SHA-256); 2: HMAC under the audit key, UTC


class AuditVerifyOut(schemas.AuditVerifyOut):
    anchors: int  # heads recorded in the anchor file
    anchored_seq: int | None  # the newest anchored head, if any
    anchored_at: datetime | None


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
        hash_version=row.hash_version,
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
def verify(uow: UowDep, ctx: ContextDep) -> AuditVerifyOut:
    settings = ctx.settings
    path = anchor_path(settings.database.url, settings.audit.anchor_file)
    result = verify_audit(uow, AnchorFile(path) if path is not None else None)
    newest = result.newest_anchor
    return AuditVerifyOut(
        ok=result.ok,
        entries=result.entries,
        breaks=[ChainBreakOut(seq=b.seq, problem=b.problem) for b in result.breaks],
        anchors=result.anchors,
        anchored_seq=newest.seq if newest else None,
        anchored_at=newest.at if newest else None,
    )
