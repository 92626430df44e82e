"""The audit trail, checked and anchored.

`verify_audit` walks the whole chain: does every entry follow from the one
before, does its content give its hash, and does the log still reach every
head the anchor file recorded? `anchor_head` appends the current head to
the anchor file (the scheduled `audit_anchor` job, `gasbill audit anchor`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from gasbill.domain.audit import (
    Anchor,
    AnchorReading,
    AuditRecord,
    ChainBreak,
    seal_anchor,
    verify_chain,
)
from gasbill.service.ports import UnitOfWork


class Anchors(Protocol):
    """Where heads are anchored: an append-only file in production."""

    path: Path

    def read(self) -> AnchorReading: ...

    def last(self) -> Anchor | None: ...

    def append(self, anchor: Anchor) -> None: ...


@dataclass(frozen=True, slots=True)
class AuditVerification:
    entries: int
    breaks: list[ChainBreak]
    anchor_file: Path | None = None  # None: the head is not anchored anywhere
    anchors: int = 0
    newest_anchor: Anchor | None = field(default=None)

    @property
    def ok(self) -> bool:
        return not self.breaks


def verify_audit(uow: UnitOfWork, anchors: Anchors | None = None) -> AuditVerification:
    """Walk the whole chain in order, in batches; every break is reported, not just the first."""
    seen = 0

    def counted(records: Iterable[AuditRecord]) -> Iterator[AuditRecord]:
        nonlocal seen
        for record in records:
            seen += 1
            yield record

    reading = anchors.read() if anchors is not None else AnchorReading()
    with uow:
        breaks = verify_chain(counted(uow.audit.entries()), uow.audit.key, reading.anchors)
    breaks[:0] = [
        ChainBreak(None, f"line {n} of the anchor file is not an anchor (the file was edited)")
        for n in reading.unreadable
    ]
    return AuditVerification(
        seen,
        breaks,
        anchors.path if anchors is not None else None,
        len(reading.anchors),
        reading.anchors[-1] if reading.anchors else None,
    )


def anchor_head(uow: UnitOfWork, anchors: Anchors, *, now: datetime) -> Anchor | None:
    """Append the newest entry's seq and hash, sealed, unless the file already ends with it."""
    with uow:
        head = uow.audit.head()
        key = uow.audit.key
    if head is None:
        return None
    seq, digest, entries = head
    last = anchors.last()
    if last is not None and last.seq == seq and last.hash == digest:
        return None
    anchor = seal_anchor(key, at=now, seq=seq, hash=digest, entries=entries)
    anchors.append(anchor)
    return anchor
