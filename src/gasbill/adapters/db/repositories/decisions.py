"""Decisions' records: each account's decision state, and the warning log.

Implements the service's `DecisionStateRepository` and `WarningRepository`
ports (gasbill.service.ports). The state row is created with an
insert-or-nothing, so two transactions deciding for a new account at once
both end up on the one row; warnings are claimed with `SKIP LOCKED` and
stamped with a conditional update, so a stamp is never lost nor doubled.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.accounts import Account, Customer
from gasbill.adapters.db.tables.decisions import BalanceWarning, DecisionState
from gasbill.service.ports import DecisionStateRecord, NewWarning, WarningNotice


class SqlDecisionStates:
    def __init__(self, session: Session) -> None:
        self.session = session

    def locked(self, account_id: int) -> DecisionState:
        query = (
            select(DecisionState)
            .where(DecisionState.account_id == account_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        row = self.session.exec(query).first()
        if row is None:
            self.session.execute(self._insert_ignore().values(account_id=account_id))
            row = self.session.exec(query).one()
        return row

    def save(self, state: DecisionStateRecord) -> None:
        self.session.add(state)
        self.session.flush()

    def _insert_ignore(self) -> sa.Insert:
        table = DecisionState.__table__  # type: ignore[attr-defined]
        if self.session.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table).on_conflict_do_nothing(index_elements=["account_id"])
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table).on_conflict_do_nothing(index_elements=["account_id"])


class SqlWarnings:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, warning: NewWarning) -> None:
        self.session.add(
            BalanceWarning(
                account_id=warning.account_id,
                level=warning.level,
                reason=warning.reason,
                balance_fen=warning.balance_fen,
                balance_source=warning.balance_source,
                days_left=warning.days_left,
                message=warning.message[:500],
                at=warning.at,
                next_attempt_at=warning.at,
            )
        )

    def claim_due(self, *, now: datetime, batch: int, lease_until: datetime) -> list[WarningNotice]:
        rows = self.session.exec(
            select(BalanceWarning)
            .where(
                col(BalanceWarning.delivered_at).is_(None),
                col(BalanceWarning.next_attempt_at).is_not(None),
                col(BalanceWarning.next_attempt_at) <= now,
            )
            .order_by(col(BalanceWarning.next_attempt_at), col(BalanceWarning.id))
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        if not rows:
            return []
        people = {
            account.id: (account, customer)
            for account, customer in self.session.exec(
                select(Account, Customer)
                .join(Customer, col(Customer.id) == col(Account.customer_id))
                .where(col(Account.id).in_({row.account_id for row in rows}))
            ).all()
        }
        notices = []
        for row in rows:
            assert row.id is not None
            row.attempts += 1
            row.next_attempt_at = lease_until
            self.session.add(row)
            account, customer = people[row.account_id]
            notices.append(
                WarningNotice(
                    id=row.id,
                    account_id=row.account_id,
                    account_number=account.number,
                    customer_name=customer.name,
                    customer_phone=customer.phone,
                    level=row.level,
                    reason=row.reason,
                    balance_fen=row.balance_fen,
                    balance_source=row.balance_source,
                    days_left=row.days_left,
                    message=row.message,
                    at=row.at,
                    attempt=row.attempts,
                )
            )
        self.session.flush()
        return notices

    def stamp_delivered(self, warning_id: int, *, at: datetime) -> bool:
        values = {"delivered_at": at, "next_attempt_at": None, "given_up_at": None}
        return self._update(warning_id, values, attempts=None)

    def stamp_failed(
        self, warning_id: int, *, attempt: int, error: str, at: datetime, retry_at: datetime | None
    ) -> bool:
        values: dict[str, Any] = {"last_error": error[:1000], "next_attempt_at": retry_at}
        if retry_at is None:
            values["given_up_at"] = at
        return self._update(warning_id, values, attempts=attempt)

    def _update(self, warning_id: int, values: dict[str, Any], *, attempts: int | None) -> bool:
        table = BalanceWarning.__table__  # type: ignore[attr-defined]
        where = [table.c.id == warning_id, table.c.delivered_at.is_(None)]
        if attempts is not None:
            where.append(table.c.attempts == attempts)
        result = self.session.execute(sa.update(table).where(*where).values(**values))
        return bool(getattr(result, "rowcount", 0))
