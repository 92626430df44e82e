"""Tariff campaigns (DESIGN §7): pushing a price change to every meter-mode meter, and proving it.

A campaign is one price change of one tariff (a version or a season
becoming effective), created once. Each of its meters gets a `setprice`,
then a `getprice` that verifies the ladder; the status of a campaign meter
follows its commands' endings in the outbox. `true_up_day` records what the
price-change true-up has posted per account and day, so it is posted once.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import big, instant, now_column

CAMPAIGN_STATUSES = ("enrolling", "running", "completed")
METER_STATUSES = ("queued", "sent", "confirmed", "verified", "failed")


class Campaign(SQLModel, table=True):
    __tablename__ = "campaign"
    __table_args__ = (
        sa.UniqueConstraint("tariff_id", "label"),
        sa.CheckConstraint(
            "status IN ('enrolling', 'running', 'completed')", name="campaign_status"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    tariff_id: str = Field(max_length=64, index=True)
    label: str = Field(max_length=200)  # the price change: a version label or a season change
    effective_at: datetime = instant()
    created_at: datetime = now_column()
    status: str = Field(default="enrolling", max_length=20)


class CampaignMeter(SQLModel, table=True):
    """One meter of a campaign: its setprice, its verifying getprice, and where it stands.

    `command_status` is the status its current command (the getprice once
    queued, else the setprice) had when last looked at: only a row whose
    command moved since needs looking at again.
    """

    __tablename__ = "campaign_meter"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'confirmed', 'verified', 'failed')",
            name="meter_status",
        ),
        sa.Index("ix_campaign_meter_campaign_status", "campaign_id", "status"),
    )

    campaign_id: int = Field(primary_key=True, foreign_key="campaign.id")
    meter_id: int = Field(primary_key=True, foreign_key="meter.id", index=True)
    account_id: int = Field(foreign_key="account.id", index=True)
    setprice_id: int | None = Field(default=None, foreign_key="command.id")
    getprice_id: int | None = Field(default=None, foreign_key="command.id")
    status: str = Field(default="queued", max_length=20)
    command_status: str = Field(default="", max_length=20)
    last_error: str = Field(default="", max_length=1000)
    confirmed_at: datetime | None = instant(default=None)
    verified_at: datetime | None = instant(default=None)
    created_at: datetime = now_column()
    updated_at: datetime = now_column()


class TrueUpDay(SQLModel, table=True):
    """What the price-change true-up has posted for one account's (cycle, local day).

    `revision` counts the changes of the row; it goes into the transfers'
    idempotency keys, so a repeated run posts nothing and a later change is
    never mistaken for an earlier one.
    """

    __tablename__ = "true_up_day"

    account_id: int = Field(primary_key=True, foreign_key="account.id")
    cycle_key: str = Field(primary_key=True, max_length=40)
    day: date = Field(primary_key=True)
    posted_fen: int = big(default=0)
    campaign_id: int | None = Field(default=None, foreign_key="campaign.id")
    revision: int = 0
    updated_at: datetime = now_column()


class TrueUpMark(SQLModel, table=True):
    """Where one account's price-change true-up stands, so the next run re-rates only what
    changed since (an exact skip or an incremental re-rating, never a different answer).

    The true-up writes it after each run: the start and the inputs (`basis`, a digest of
    the tariff, the confirmations, the account's meters and opening) it rated with, and
    the tariff in force's rating state after the last reading that ended a local day
    (`day`; the `state_*` as in `charge_day`). Billing keeps the rest: for an account with
    a mark, each run that changed anything (a day's charge, a reading not billed through
    before, or one before `billed_through`) sets `rebilled_from` to the first day it
    rated, if earlier. Null: nothing billed since the mark, so there is nothing to re-rate.
    """

    __tablename__ = "true_up_mark"

    account_id: int = Field(primary_key=True, foreign_key="account.id")
    start_at: datetime = instant()
    basis: str = Field(max_length=64)
    cycle_key: str = Field(max_length=40)
    day: date
    state_at: datetime = instant()
    state_register: int = big()
    state_cycle_start: datetime = instant()
    state_cycle_end: datetime = instant()
    state_version: int
    state_used: int = big()
    state_cost: int = big()
    billed_through: datetime | None = instant(default=None)
    rebilled_from: date | None = None
    updated_at: datetime = now_column()
