"""The price-change true-up's rows (`true_up_mark`, `true_up_day`), the meter-mode accounts
it runs over and the campaigns its days are credited to: the service's `TrueUpRepository`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.tables.campaigns import Campaign, TrueUpDay, TrueUpMark
from gasbill.domain.accounts import BillingMode

METER_MODE = str(BillingMode.METER)


class TrueUpStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def meter_account_ids(self, after_id: int, limit: int) -> list[int]:
        """Active meter-mode accounts, by id after `after_id`."""
        query = (
            sa.select(col(Account.id))
            .where(
                col(Account.billing_mode) == METER_MODE,
                col(Account.status) == "active",
                col(Account.id) > after_id,
            )
            .order_by(col(Account.id))
            .limit(limit)
        )
        return [int(i) for (i,) in self.session.execute(query).all()]

    def of_tariff(self, tariff_id: str) -> Sequence[Campaign]:
        return self.session.exec(
            select(Campaign)
            .where(Campaign.tariff_id == tariff_id)
            .order_by(col(Campaign.effective_at))
        ).all()

    def true_up_days(
        self, from_days: Mapping[int, date]
    ) -> dict[int, dict[tuple[str, date], tuple[int, int]]]:
        """Per account, what the true-up posted per (cycle, day) from its day in `from_days`
        on: (fen, revision). One query for the batch."""
        found: dict[int, dict[tuple[str, date], tuple[int, int]]] = defaultdict(dict)
        ids = sorted(from_days)
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            query = sa.select(
                col(TrueUpDay.account_id),
                col(TrueUpDay.cycle_key),
                col(TrueUpDay.day),
                col(TrueUpDay.posted_fen),
                col(TrueUpDay.revision),
            ).where(
                col(TrueUpDay.account_id).in_(chunk),
                col(TrueUpDay.day) >= min(from_days[i] for i in chunk),
            )
            for account_id, cycle_key, day, posted, revision in self.session.execute(query).all():
                if day >= from_days[account_id]:
                    found[account_id][(cycle_key, day)] = (int(posted), int(revision))
        return found

    def true_up_marks(self, account_ids: Sequence[int]) -> dict[int, TrueUpMark]:
        """Where each account's true-up stands (accounts without a mark absent)."""
        if not account_ids:
            return {}
        query = select(TrueUpMark).where(col(TrueUpMark.account_id).in_(list(account_ids)))
        return {mark.account_id: mark for mark in self.session.exec(query).all()}

    def save_true_up_marks(self, rows: list[dict[str, Any]], *, drop: Sequence[int]) -> None:
        """Insert or replace these marks; delete those of `drop` (trued up from the start
        next time)."""
        if drop:
            self.session.execute(
                sa.delete(TrueUpMark).where(col(TrueUpMark.account_id).in_(list(drop)))
            )
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(TrueUpMark)
        updated = {name: statement.excluded[name] for name in rows[0] if name != "account_id"}
        self.session.execute(
            statement.on_conflict_do_update(index_elements=["account_id"], set_=updated), rows
        )

    def save_true_up_days(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(TrueUpDay)
        updated = {
            name: statement.excluded[name]
            for name in rows[0]
            if name not in ("account_id", "cycle_key", "day")
        }
        self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["account_id", "cycle_key", "day"], set_=updated
            ),
            rows,
        )
