"""The unit of work: one database transaction per use case, committed only there.

    with uow:
        account = uow.accounts.get(account_id)
        ...
        uow.commit()

Leaving the block without `commit()` rolls everything back. Repositories are
made on first use and share the unit's session.

`retried(work)` is the edge where a transaction that met a deadlock or a
serialization failure (PostgreSQL SQLSTATE 40P01, 40001; a lock not granted
in time, 55P03) runs again from the start, a bounded number of times with
a short random pause: the whole use case is re-run, never half of it, since
the failed transaction was rolled back whole.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Self, TypeVar

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from gasbill.adapters.db.repositories.accounts import AccountRepository
from gasbill.adapters.db.repositories.audit import AuditLog
from gasbill.adapters.db.repositories.billing import BillingStore
from gasbill.adapters.db.repositories.campaigns import CampaignStore
from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.repositories.decisions import SqlDecisionStates, SqlWarnings
from gasbill.adapters.db.repositories.exceptions import ExceptionRepository
from gasbill.adapters.db.repositories.idempotency import IdempotencyStore
from gasbill.adapters.db.repositories.inbox import InboxStore
from gasbill.adapters.db.repositories.ledger import SqlLedger
from gasbill.adapters.db.repositories.poll_marks import PollMarks
from gasbill.adapters.db.repositories.push_conflicts import ConflictStore
from gasbill.adapters.db.repositories.readings import ReadingStore, reading_transactions
from gasbill.adapters.db.repositories.reconciliation import (
    ReconciliationStore,
    SnapshotReader,
    snapshot_readers,
)
from gasbill.adapters.db.repositories.reconciliation_system import SystemStore
from gasbill.adapters.db.repositories.staff import StaffRepository
from gasbill.adapters.db.repositories.true_ups import TrueUpStore
from gasbill.service.ports import CommitConflict

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRYABLE = frozenset({"40P01", "40001", "55P03"})  # deadlock, serialization, lock timeout
ATTEMPTS = 5


def is_retryable(exc: BaseException) -> bool:
    """Whether the database refused the transaction only because of another one."""
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None)
        code = getattr(orig, "sqlstate", None) or getattr(seen, "sqlstate", None)
        if code in RETRYABLE:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def retried(work: Callable[[], T], *, attempts: int = ATTEMPTS, pause: float = 0.02) -> T:
    """Run a whole use case (its own `with uow:` and commit); again on a lock conflict."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except DBAPIError as exc:
            if attempt == attempts or not is_retryable(exc):
                raise
            log.warning("transaction conflict, attempt %d of %d: %s", attempt, attempts, exc.orig)
            time.sleep(random.uniform(0, pause * 2**attempt))
    raise AssertionError("unreachable")


class UniqueConflict(CommitConflict, IntegrityError):
    """A commit refused for a unique key: the service's `CommitConflict`, and still the
    driver's `IntegrityError` for the edges that handle that (the API's error handler)."""


# One factory for every unit of work, bound to its engine per session: each `sessionmaker`
# makes a Session subclass of its own, whose event dispatch SQLAlchemy builds on its first
# session, and one per unit of work cost more than a small query (and kept every class).
_SESSIONS = sessionmaker(class_=Session, expire_on_commit=False)


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session: Session | None = None
        self.committed = False

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is not re-entrant")
        self._session = _SESSIONS(bind=self.engine)
        self.committed = False
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._session is not None
        try:
            # Detach first: what was read stays readable after the block; nothing
            # uncommitted reaches the database.
            self._session.expunge_all()
            self._session.rollback()
        finally:
            self._session.close()
            self._session = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("use the unit of work inside `with uow:`")
        return self._session

    def commit(self) -> None:
        try:
            self.session.commit()
        except IntegrityError as exc:
            raise UniqueConflict(exc.statement, exc.params, exc.orig or exc) from exc
        self.committed = True

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()

    def savepoint(self) -> AbstractContextManager[object]:
        return self.session.begin_nested()

    def reading_transaction(self) -> AbstractContextManager[ReadingStore]:
        """A reading store in a transaction of its own, apart from this unit's session,
        committed when the block ends (an import's writer threads)."""
        return reading_transactions(self.engine)()

    # -- repositories -----------------------------------------------------------
    @property
    def accounts(self) -> AccountRepository:
        return AccountRepository(self.session)

    @property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.session)

    @property
    def audit(self) -> AuditLog:
        return AuditLog(self.session)

    @property
    def idempotency(self) -> IdempotencyStore:
        return IdempotencyStore(self.session)

    @property
    def billing(self) -> BillingStore:
        return BillingStore(self.session)

    @property
    def campaigns(self) -> CampaignStore:
        return CampaignStore(self.session)

    @property
    def true_ups(self) -> TrueUpStore:
        return TrueUpStore(self.session)

    @property
    def commands(self) -> CommandStore:
        return CommandStore(self.session)

    @property
    def staff(self) -> StaffRepository:
        return StaffRepository(self.session)

    @property
    def warnings(self) -> SqlWarnings:
        return SqlWarnings(self.session)

    @property
    def decision_states(self) -> SqlDecisionStates:
        return SqlDecisionStates(self.session)

    @property
    def exceptions(self) -> ExceptionRepository:
        return ExceptionRepository(self.session)

    @property
    def conflicts(self) -> ConflictStore:
        return ConflictStore(self.session)

    @property
    def inbox(self) -> InboxStore:
        return InboxStore(self.session)

    @property
    def readings(self) -> ReadingStore:
        return ReadingStore(self.session)

    @property
    def poll_marks(self) -> PollMarks:
        return PollMarks(self.session)

    @property
    def reconciliation(self) -> ReconciliationStore:
        return ReconciliationStore(self.session)

    @property
    def reconciliation_system(self) -> SystemStore:
        return SystemStore(self.session)

    def snapshot_readers(self, count: int) -> AbstractContextManager[list[SnapshotReader]]:
        """Up to `count` more readers of reconciliation, each on a connection of its own
        that sees what this unit sees (PostgreSQL: its exported snapshot; none on SQLite)."""
        return snapshot_readers(self.session, count)
