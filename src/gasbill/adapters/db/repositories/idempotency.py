"""The first answer to each staff request that carried an `Idempotency-Key`.

The API stores the answer with a hash of the request; a repeat with the same
key and hash replays it, the same key with another hash is a 409. The
ledger keeps its own guard underneath (one transfer per key), so this table
only has to remember answers, not to serialise anything.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from gasbill.adapters.db.tables.base import utcnow
from gasbill.adapters.db.tables.ledger import IdempotencyRecord


class IdempotencyStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str) -> IdempotencyRecord | None:
        """The answer stored for `key`, if any (read fresh from the database)."""
        return self.session.get(IdempotencyRecord, key, populate_existing=True)

    def save(
        self,
        key: str,
        scope: str,
        request_hash: str,
        status_code: int,
        response_json: str,
        *,
        at: datetime | None = None,
    ) -> IdempotencyRecord:
        """Store the first answer for `key` in the caller's transaction.

        A key already stored (a concurrent first request won) raises
        `sqlalchemy.exc.IntegrityError` at the flush: roll back and replay
        what `get` then returns.
        """
        record = IdempotencyRecord(
            key=key,
            scope=scope,
            request_hash=request_hash,
            status_code=status_code,
            response=response_json,
            created_at=at or utcnow(),
        )
        self.session.add(record)
        self.session.flush()
        return record
