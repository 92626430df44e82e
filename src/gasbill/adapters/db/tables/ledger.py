"""The ledger: ledger accounts and append-only transfers (DESIGN §6).

Only customer accounts keep running balance columns (one row per customer,
locked only by that customer's postings). Global accounts (cash, revenue,
refunds, adjustments) keep none: their balances are derived from transfers,
so no posting ever waits on one hot row.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import BIG_ID, big, instant, now_column


class LedgerAccount(SQLModel, table=True):
    __tablename__ = "ledger_account"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=80, unique=True)
    kind: str = Field(max_length=20)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    keeps_balance: bool = False
    overdraft_allowance_fen: int | None = big(default=None)
    debits_posted_fen: int = big(default=0)
    credits_posted_fen: int = big(default=0)
    debits_pending_fen: int = big(default=0)
    credits_pending_fen: int = big(default=0)


class TransferRow(SQLModel, table=True):
    __tablename__ = "transfer"
    __table_args__ = (
        sa.CheckConstraint("amount_fen > 0", name="amount_positive"),
        sa.CheckConstraint("debit_account_id <> credit_account_id", name="two_accounts"),
        sa.CheckConstraint(
            "status IN ('posted', 'pending', 'post_pending', 'void_pending')", name="status"
        ),
        sa.Index("ix_transfer_debit_effective", "debit_account_id", "effective_at"),
        sa.Index("ix_transfer_credit_effective", "credit_account_id", "effective_at"),
    )

    seq: int | None = Field(default=None, sa_type=BIG_ID, primary_key=True)
    id: str = Field(max_length=40, unique=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    debit_account_id: int = Field(foreign_key="ledger_account.id")
    credit_account_id: int = Field(foreign_key="ledger_account.id")
    amount_fen: int = big()
    kind: str = Field(max_length=20)
    status: str = Field(max_length=20)
    # at most one resolution per hold and one reversal per transfer
    pending_id: str | None = Field(
        default=None, max_length=40, unique=True, foreign_key="transfer.id"
    )
    reverses: str | None = Field(
        default=None, max_length=40, unique=True, foreign_key="transfer.id"
    )
    group_id: str | None = Field(default=None, max_length=40, index=True)
    reason: str = Field(default="", max_length=500)
    actor: str = Field(default="", max_length=100)
    effective_at: datetime = instant()
    recorded_at: datetime = now_column()


class IdempotencyRecord(SQLModel, table=True):
    """A staff request's first answer, replayed for a repeat of the same key."""

    __tablename__ = "idempotency_record"

    key: str = Field(primary_key=True, max_length=200)
    scope: str = Field(max_length=100)
    request_hash: str = Field(max_length=64)
    status_code: int
    response: str = Field(sa_type=sa.Text)
    created_at: datetime = now_column()
