"""The audit trail's rules: each entry is chained to the one before by SHA-256.

An entry's hash covers its time, actor, action, entity, before/after
snapshots and the previous entry's hash, so changing, removing or
reordering any entry breaks the chain from there on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime  # aware
    actor: str
    action: str
    entity: str
    entity_id: str
    before: str  # canonical JSON
    after: str  # canonical JSON
    prev_hash: str
    hash: str
    seq: int | None = None


def canonical_json(value: object) -> str:
    """One spelling per value: sorted keys, no spaces, non-ASCII kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: str,
    after: str,
    prev_hash: str,
) -> str:
    if at.tzinfo is None:
        raise ValueError("audit times must be aware")
    material = canonical_json(
        [
            at.isoformat(timespec="microseconds"),
            actor,
            action,
            entity,
            entity_id,
            before,
            after,
            prev_hash,
        ]
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def chain_entry(
    *,
    at: datetime,
    actor: str,
    action: str,
    entity: str,
    entity_id: str,
    before: object,
    after: object,
    prev_hash: str,
) -> AuditRecord:
    before_json, after_json = canonical_json(before), canonical_json(after)
    digest = entry_hash(
        at=at,
        actor=actor,
        action=action,
        entity=entity,
        entity_id=entity_id,
        before=before_json,
        after=after_json,
        prev_hash=prev_hash,
    )
    return AuditRecord(
        at, actor, action, entity, entity_id, before_json, after_json, prev_hash, digest
    )


@dataclass(frozen=True, slots=True)
class ChainBreak:
    seq: int | None
    problem: str


def verify_chain(records: Iterable[AuditRecord]) -> list[ChainBreak]:
    """Every place the chain does not hold, in order; empty when it is intact."""
    breaks: list[ChainBreak] = []
    previous = GENESIS
    for record in records:
        if record.prev_hash != previous:
            breaks.append(
                ChainBreak(
                    record.seq,
                    "does not follow the entry before it (an entry was removed or reordered)",
                )
            )
        expected = entry_hash(
            at=record.at,
            actor=record.actor,
            action=record.action,
            entity=record.entity,
            entity_id=record.entity_id,
            before=record.before,
            after=record.after,
            prev_hash=record.prev_hash,
        )
        if record.hash != expected:
            breaks.append(
                ChainBreak(
                    record.seq, "its content does not match its hash (the entry was changed)"
                )
            )
        previous = record.hash
    return breaks
