"""The unit of work: one database transaction per use case, committed only there.

    with uow:
        account = uow.accounts.get(account_id)
        ...
        uow.commit()

Leaving the block without `commit()` rolls everything back. Repositories are
made on first use and share the unit's session.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

from gasbill.adapters.db.repositories.accounts import AccountRepository
from gasbill.adapters.db.repositories.audit import AuditLog
from gasbill.adapters.db.repositories.idempotency import IdempotencyStore
from gasbill.adapters.db.repositories.ledger import SqlLedger


class UnitOfWork:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(bind=engine, class_=Session, expire_on_commit=False)
        self._session: Session | None = None
        self.committed = False

    def __enter__(self) -> Self:
        if self._session is not None:
            raise RuntimeError("a unit of work is not re-entrant")
        self._session = self._sessions()
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
        self.session.commit()
        self.committed = True

    def rollback(self) -> None:
        self.session.rollback()

    def flush(self) -> None:
        self.session.flush()

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
