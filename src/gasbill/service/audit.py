"""The audit trail, checked: does every entry still follow from the one before?"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.audit import AuditRecord, ChainBreak, verify_chain


@dataclass(frozen=True, slots=True)
class AuditVerification:
    entries: int
    breaks: list[ChainBreak]

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify_audit(uow: UnitOfWork) -> AuditVerification:
    """Walk the whole chain in order, in batches; every break is reported, not just the first."""
    seen = 0

    def counted(records: Iterable[AuditRecord]) -> Iterator[AuditRecord]:
        nonlocal seen
        for record in records:
            seen += 1
            yield record

    with uow:
        breaks = verify_chain(counted(uow.audit.entries()))
    return AuditVerification(seen, breaks)
