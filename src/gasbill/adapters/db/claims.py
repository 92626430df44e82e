"""Claims that let any number of worker processes share one queue (PostgreSQL).

Rows of a queue are claimed with `FOR UPDATE SKIP LOCKED` where the row is
the unit of work (the billing inbox, notifications, campaign meters). Where
the unit is wider than a row — a meter's commands, which go out one at a
time in order — a transaction-scoped advisory lock on (what, key) claims
it: taken with `pg_try_advisory_xact_lock`, released at commit or rollback,
skipped by every other worker meanwhile. On SQLite one worker works the
queues (one writer per file), so every claim is granted.
"""

from __future__ import annotations

import zlib

import sqlalchemy as sa
from sqlalchemy.orm import Session

# the first key of the advisory lock: which kind of thing is claimed
DISPATCH_METER = 0x6762_0001  # a meter's commands, while the dispatcher claims them
CAMPAIGN_ENROL = 0x6762_0002  # a campaign's enrolment, one page at a time
FULL_LADDER = 0x6762_0003  # a tariff's full-ladder enrolment, one page at a time

INT4 = 2**31 - 1


def shared_queues(session: Session) -> bool:
    """Whether several processes may work this database's queues at once."""
    return session.get_bind().dialect.name == "postgresql"


def try_claim(session: Session, what: int, key: int) -> bool:
    """Claim (what, key) for this transaction; False if another one holds it."""
    if not shared_queues(session):
        return True
    got = session.execute(
        sa.text("SELECT pg_try_advisory_xact_lock(:what, :key)"),
        {"what": what, "key": key % INT4},
    ).scalar_one()
    return bool(got)


def claimed_keys_sql(what: int, column: str) -> str:
    """A WHERE condition that claims each row's `column` key, skipping those held elsewhere."""
    return f"pg_try_advisory_xact_lock({int(what)}, ({column} % {INT4})::int)"


def key_of(text: str) -> int:
    """A stable claim key for a name (a tariff id)."""
    return zlib.crc32(text.encode())
