"""Customers, their accounts, meters, and which meter an account uses when."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import big, instant, now_column

BILLING_MODES = ("meter", "system")


class Customer(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    phone: str = Field(default="", max_length=30)
    address: str = Field(default="", max_length=300)
    created_at: datetime = now_column()


class Account(SQLModel, table=True):
    __table_args__ = (
        sa.CheckConstraint("billing_mode IN ('meter', 'system')", name="billing_mode"),
        sa.CheckConstraint("persons BETWEEN 1 AND 99", name="persons"),
        sa.CheckConstraint("status IN ('active', 'closed')", name="status"),
        sa.CheckConstraint("cutoff_fen <= 0", name="cutoff_not_positive"),
        sa.CheckConstraint("reopen_fen >= cutoff_fen", name="reopen_above_cutoff"),
    )

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(max_length=30, unique=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    company_no: str = Field(max_length=10)
    billing_mode: str = Field(max_length=10)
    tariff_id: str = Field(max_length=64, index=True)
    persons: int = 1
    opened_on: date
    warning_fen: int = big(default=2000)
    cutoff_fen: int = big(default=0)
    reopen_fen: int = big(default=0)
    status: str = Field(default="active", max_length=10)
    created_at: datetime = now_column()


class Meter(SQLModel, table=True):
    __table_args__ = (sa.UniqueConstraint("company_no", "comm_no"),)

    id: int | None = Field(default=None, primary_key=True)
    company_no: str = Field(max_length=10)
    comm_no: str = Field(max_length=50)
    created_at: datetime = now_column()


class MeterBinding(SQLModel, table=True):
    """An account used a meter from `bound_at` until `unbound_at`.

    The opening and final registers let billing continue across a meter
    replacement without a gap or a double charge.
    """

    __tablename__ = "meter_binding"
    __table_args__ = (
        # one active meter per account, one active account per meter
        sa.Index(
            "uq_meter_binding_active_account",
            "account_id",
            unique=True,
            sqlite_where=sa.text("unbound_at IS NULL"),
            postgresql_where=sa.text("unbound_at IS NULL"),
        ),
        sa.Index(
            "uq_meter_binding_active_meter",
            "meter_id",
            unique=True,
            sqlite_where=sa.text("unbound_at IS NULL"),
            postgresql_where=sa.text("unbound_at IS NULL"),
        ),
        sa.CheckConstraint("opening_litres >= 0", name="opening_not_negative"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    meter_id: int = Field(foreign_key="meter.id", index=True)
    bound_at: datetime = instant()
    opening_litres: int = big(default=0)
    unbound_at: datetime | None = instant(default=None)
    final_litres: int | None = big(default=None)
    reason: str = Field(default="", max_length=200)
