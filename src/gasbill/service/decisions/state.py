"""The decision state kept per account: what has fired, and the valve."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from gasbill.adapters.db.tables.decisions import DecisionState
from gasbill.adapters.db.uow import UnitOfWork


def state_row(uow: UnitOfWork, account_id: int) -> DecisionState:
    """The account's decision state, locked; created (all armed, valve open) on first use."""
    query = (
        select(DecisionState)
        .where(DecisionState.account_id == account_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    row = uow.session.exec(query).first()
    if row is None:
        insert = _insert_ignore(uow)
        uow.session.execute(insert.values(account_id=account_id))
        row = uow.session.exec(query).one()
    return row


def _insert_ignore(uow: UnitOfWork) -> sa.Insert:
    table = DecisionState.__table__  # type: ignore[attr-defined]
    if uow.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing(index_elements=["account_id"])
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table).on_conflict_do_nothing(index_elements=["account_id"])
