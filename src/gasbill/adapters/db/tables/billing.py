"""Billing's own records: rating state, what each day was charged, and exceptions."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import big, instant, now_column


class ChargeDay(SQLModel, table=True):
    """What one account's local day in one cycle has been charged, and rating's state after it.

    Posting is keyed by (account, cycle, day): billing posts only
    `target − posted_fen`, so a day is never charged twice. The `state_*`
    columns are a checkpoint: rating's state after a reading that fell exactly
    at the end of this day (null otherwise). Billing always re-rates from the
    latest checkpoint before what changed, so every amount it computes is a
    whole day's target, never an increment.
    """

    __tablename__ = "charge_day"
    __table_args__ = (
        # only checkpoints are looked up by time: a partial index keeps it small
        sa.Index(
            "ix_charge_day_checkpoint",
            "account_id",
            "state_at",
            sqlite_where=sa.text("state_at IS NOT NULL"),
            postgresql_where=sa.text("state_at IS NOT NULL"),
        ),
    )

    account_id: int = Field(primary_key=True, foreign_key="account.id")
    cycle_key: str = Field(primary_key=True, max_length=40)
    day: date = Field(primary_key=True)
    posted_fen: int = big(default=0)
    litres: int = big(default=0)
    cost_micro: int = big(default=0)  # exact cost of the day, millionths of a yuan
    lines: str = Field(
        default="[]", sa_type=sa.Text
    )  # JSON: [[version, tier, litres, price, cost]]
    state_at: datetime | None = instant(default=None)
    state_register: int | None = big(default=None)
    state_cycle_start: datetime | None = instant(default=None)
    state_cycle_end: datetime | None = instant(default=None)
    state_version: int | None = None
    state_used: int | None = big(default=None)
    state_cost: int | None = big(default=None)
    updated_at: datetime = now_column()


class BillingException(SQLModel, table=True):
    """Something a clerk must look at: an anomalous reading, an unknown meter, …"""

    __tablename__ = "billing_exception"
    __table_args__ = (
        sa.UniqueConstraint("kind", "company_no", "meter_comm_no", "reading_at"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="status"),
        sa.Index("ix_billing_exception_status_created", "status", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40)
    status: str = Field(default="open", max_length=10)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    company_no: str = Field(default="", max_length=10)
    meter_comm_no: str = Field(default="", max_length=50)
    reading_at: datetime | None = instant(default=None)
    detail: str = Field(default="", max_length=1000)
    resolution: str = Field(default="", max_length=1000)
    resolved_by: str | None = Field(default=None, max_length=100)
    resolved_at: datetime | None = instant(default=None)
    created_at: datetime = now_column()
