"""Decisions' records: each account's warning and valve state, and the warnings sent.

The state row is what the pure decision functions last returned for an
account (DESIGN §7): which warning levels have fired and not re-armed, where
the valve is as far as we know, since when the balance is at the cut-off,
and which valve command is still pending. The warning log keeps every
warning once, with its delivery: recorded in the decision's transaction,
delivered afterwards by the notifier and stamped.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import BIG_ID, big, instant, now_column


class DecisionState(SQLModel, table=True):
    """One account's decision state; absent means all armed, valve open."""

    __tablename__ = "decision_state"
    __table_args__ = (
        sa.CheckConstraint(
            "valve_position IN ('open', 'close_pending', 'closed', 'open_pending')",
            name="valve_position",
        ),
        sa.CheckConstraint(
            "closed_by IS NULL OR closed_by IN ('closed_by_us', 'closed_by_meter', 'unknown')",
            name="closed_by",
        ),
    )

    account_id: int = Field(primary_key=True, foreign_key="account.id")
    # warnings: None while the low level is armed, else why it fired (by_amount | by_days)
    low_fired_by: str | None = Field(default=None, max_length=20)
    below_zero_fired: bool = False
    # the valve
    valve_position: str = Field(default="open", max_length=20)
    closed_by: str | None = Field(default=None, max_length=20)
    below_cutoff_since: datetime | None = instant(default=None)
    valve_command_id: int | None = Field(default=None, foreign_key="command.id")
    valve_reason: str = Field(default="", max_length=500)  # why the last valve action
    valve_changed_at: datetime | None = instant(default=None)
    # system mode, display sync: the balance last sent with setremain (fen)
    display_fen: int | None = big(default=None)
    # what the last decision saw
    balance_fen: int | None = big(default=None)
    balance_source: str = Field(default="", max_length=20)
    decided_at: datetime | None = instant(default=None)
    updated_at: datetime = now_column()


class BalanceWarning(SQLModel, table=True):
    """A low-balance warning, recorded once per crossing, delivered at least once.

    `next_attempt_at` is when delivery is (next) due; null once delivered or
    given up. A claimed delivery moves it ahead by a lease, so two workers
    never send the same warning at once, and a worker that died mid-way
    leaves it to be sent again when the lease runs out.
    """

    __tablename__ = "warning"
    __table_args__ = (
        sa.Index("ix_warning_due", "next_attempt_at", "id"),
        sa.Index("ix_warning_account_at", "account_id", "at"),
        sa.CheckConstraint("level IN ('low', 'below_zero')", name="level"),
    )

    id: int | None = Field(default=None, sa_type=BIG_ID, primary_key=True)
    account_id: int = Field(foreign_key="account.id")
    level: str = Field(max_length=20)
    reason: str = Field(max_length=20)  # by_amount | by_days | below_zero
    balance_fen: int = big()
    balance_source: str = Field(default="", max_length=20)
    days_left: str | None = Field(default=None, max_length=20)  # "4.5"; None: unknown
    message: str = Field(default="", max_length=500)
    at: datetime = instant()
    delivered_at: datetime | None = instant(default=None)
    attempts: int = 0
    last_error: str = Field(default="", max_length=1000)
    next_attempt_at: datetime | None = instant(default=None)
    given_up_at: datetime | None = instant(default=None)
