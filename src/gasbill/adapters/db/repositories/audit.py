"""The audit log table: appended under a lock so the hash chain never forks.

Entries are sealed with the audit key, which lives outside the database: it
rides on the engine as an execution option (`with_audit_key`), so every unit
of work on that engine writes and checks with the same key.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.staff import AuditEntry
from gasbill.domain.audit import DEMO_AUDIT_KEY, GENESIS, AuditRecord, chain_entry

# One key for the transaction-scoped advisory lock that serialises appends on PostgreSQL.
AUDIT_LOCK_KEY = 0x6761_7362_696C_6C01  # "gasbill" + 1
# The engine's execution option that carries the audit key.
AUDIT_KEY_OPTION = "gasbill_audit_key"


def with_audit_key(engine: Engine, key: str) -> Engine:
    """The same engine (same pool) whose units of work seal audit entries with `key`."""
    if not key:
        raise ValueError("the audit key cannot be empty")
    return engine.execution_options(**{AUDIT_KEY_OPTION: key})


def audit_key_of(bind: Engine | Connection) -> bytes:
    key = bind.get_execution_options().get(AUDIT_KEY_OPTION) or DEMO_AUDIT_KEY
    return str(key).encode("utf-8")


class AuditLog:
    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def key(self) -> bytes:
        bind = self.session.get_bind()
        assert isinstance(bind, Engine | Connection)
        return audit_key_of(bind)

    def record(
        self,
        *,
        actor: str,
        action: str,
        entity: str,
        entity_id: object = "",
        before: object = None,
        after: object = None,
        at: datetime | None = None,
    ) -> AuditRecord:
        """Append one entry in the caller's transaction."""
        bind = self.session.get_bind()
        if bind.dialect.name == "postgresql":
            self.session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK_KEY})
        last = self.session.exec(
            select(AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
        ).first()
        record = chain_entry(
            key=self.key,
            at=at or datetime.now(UTC),
            actor=actor,
            action=action,
            entity=entity,
            entity_id=str(entity_id),
            before=before,
            after=after,
            prev_hash=last or GENESIS,
        )
        row = AuditEntry(
            at=record.at,
            actor=record.actor,
            action=record.action,
            entity=record.entity,
            entity_id=record.entity_id,
            before=record.before,
            after=record.after,
            prev_hash=record.prev_hash,
            hash=record.hash,
            hash_version=record.version,
        )
        self.session.add(row)
        self.session.flush()
        return record

    def entries(self, *, batch: int = 1000) -> Iterator[AuditRecord]:
        """Every entry in order, read in batches."""
        after = 0
        while True:
            rows = self.session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.seq) > after)
                .order_by(col(AuditEntry.seq))
                .limit(batch)
            ).all()
            if not rows:
                return
            for row in rows:
                yield AuditRecord(
                    row.at,
                    row.actor,
                    row.action,
                    row.entity,
                    row.entity_id,
                    row.before,
                    row.after,
                    row.prev_hash,
                    row.hash,
                    row.seq,
                    row.hash_version,
                )
            after = rows[-1].seq or after

    def head(self) -> tuple[int, str, int] | None:
        """The newest entry's seq and hash, and how many entries there are; None when empty."""
        last = self.session.exec(
            select(AuditEntry.seq, AuditEntry.hash).order_by(col(AuditEntry.seq).desc()).limit(1)
        ).first()
        if last is None or last[0] is None:
            return None
        count = self.session.exec(select(sa.func.count()).select_from(AuditEntry)).one()
        return last[0], last[1], int(count)

    def latest(self, limit: int = 50, *, entity: str | None = None) -> list[AuditEntry]:
        query = select(AuditEntry).order_by(col(AuditEntry.seq).desc()).limit(limit)
        if entity is not None:
            query = query.where(AuditEntry.entity == entity)
        return list(self.session.exec(query).all())
