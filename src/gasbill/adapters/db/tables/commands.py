"""The command outbox (DESIGN §8): commands to meters, what each meter has confirmed, reports."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import ConfigDict
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.intents import IntentColumn, LadderColumn
from gasbill.adapters.db.tables.base import big, instant, now_column
from gasbill.domain.commands import Command as Intent
from gasbill.domain.commands import LadderPrice


class Command(SQLModel, table=True):
    """One command to one meter, written in the same transaction as the decision behind it.

    Our id travels as the platform's `ctrl_define_no` (and `upper_ctrl_id`),
    so a command whose Add reply was lost is found again instead of being
    sent twice.
    """

    __tablename__ = "command"
    # `intent` holds a domain command (frozen dataclasses, not pydantic models)
    model_config = ConfigDict(arbitrary_types_allowed=True)  # type: ignore[assignment]
    __table_args__ = (
        sa.UniqueConstraint("company_no", "ctrl_id"),
        sa.Index("ix_command_due", "status", "next_attempt_at"),
        sa.Index("ix_command_meter_status", "meter_id", "status"),
        sa.CheckConstraint("amount_fen IS NULL OR amount_fen > 0", name="amount_positive"),
    )

    id: int | None = Field(default=None, primary_key=True)
    define_no: str = Field(max_length=50, unique=True)
    company_no: str = Field(max_length=10)
    meter_id: int = Field(foreign_key="meter.id")
    meter_comm_no: str = Field(max_length=50)
    account_id: int | None = Field(default=None, foreign_key="account.id", index=True)
    ctrl_type: str = Field(max_length=200)
    # the domain command's own fields (adapters/db/intents.py); the platform adapter writes
    # the wire's ctrl_data from it at dispatch. None for a top-up until it is dispatched.
    intent: Intent | None = Field(default=None, sa_type=IntentColumn)
    status: str = Field(max_length=20)
    platform_state: int | None = None
    ctrl_id: int | None = Field(default=None, sa_type=sa.BigInteger)
    hold_id: str | None = Field(default=None, max_length=40, foreign_key="transfer.id")
    amount_fen: int | None = big(default=None)
    charge_times: int | None = None
    total_fen: int | None = big(default=None)
    settles_id: int | None = Field(default=None, foreign_key="command.id", index=True)
    campaign_id: int | None = Field(default=None, index=True)
    outcome: str = Field(default="", max_length=20)
    return_data: str | None = Field(default=None, sa_type=sa.Text)
    feedback: str = Field(default="", max_length=2000)
    reason: str = Field(default="", max_length=500)
    actor: str = Field(default="", max_length=100)
    attempts: int = 0
    last_error: str = Field(default="", max_length=1000)
    next_attempt_at: datetime = instant()
    timeout_at: datetime = instant()
    claimed_at: datetime | None = instant(default=None)
    sent_at: datetime | None = instant(default=None)
    finished_at: datetime | None = instant(default=None)
    created_at: datetime = now_column()


class MeterPrepayState(SQLModel, table=True):
    """What a meter has confirmed: remote top-ups (count, total) and its ladder.

    `blocked_by` names a top-up or account opening whose outcome is unknown, or
    the charge-state read that takes the baseline after an opening: no other
    prepay command goes to the meter until it is settled (or read).
    """

    __tablename__ = "meter_prepay_state"
    model_config = ConfigDict(arbitrary_types_allowed=True)  # type: ignore[assignment]

    meter_id: int = Field(primary_key=True, foreign_key="meter.id")
    confirmed_times: int = 0
    confirmed_total_fen: int = big(default=0)
    card_times: int | None = None
    card_total_fen: int | None = big(default=None)
    baseline_at: datetime | None = instant(default=None)
    blocked_by: int | None = Field(default=None, foreign_key="command.id")
    ladder: LadderPrice | None = Field(default=None, sa_type=LadderColumn)  # confirmed
    ladder_confirmed_at: datetime | None = instant(default=None)
    updated_at: datetime = now_column()


class CommandReport(SQLModel, table=True):
    """A command report as the platform sent it (spec §5.3), kept until matched."""

    __tablename__ = "command_report"
    __table_args__ = (
        sa.Index("ix_command_report_unmatched", "company_no", "ctrl_id", "matched_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    company_no: str = Field(max_length=10)
    ctrl_id: int = Field(sa_type=sa.BigInteger)
    meter_comm_no: str = Field(default="", max_length=50)
    ctrl_state: int
    payload: str = Field(sa_type=sa.Text)
    received_at: datetime = now_column()
    matched_at: datetime | None = instant(default=None)
