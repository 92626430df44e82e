"""Readings as the platform sends them (spec §4.1), kept exactly.

Every decimal(18,3) is stored in thousandths as a 64-bit integer, so what was
pushed is served back exactly. The key includes the acquisition time, so the
table can be partitioned by month when a utility needs it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import BIG_ID, big, instant, now_column


class MeterReading(SQLModel, table=True):
    __tablename__ = "meter_reading"
    # the primary key (company, meter, type, time) serves a meter's readings in order;
    # this index a company's history by time
    __table_args__ = (sa.Index("ix_meter_reading_company_time", "company_no", "acquisition_time"),)

    company_no: str = Field(primary_key=True, max_length=10)
    meter_comm_no: str = Field(primary_key=True, max_length=50)
    data_type: int = Field(primary_key=True)
    acquisition_time: datetime = instant(primary_key=True)
    data_guid: bytes = Field(sa_type=sa.LargeBinary(16), unique=True)
    receive_time: datetime | None = instant(default=None)
    device_type: int | None = None
    device_type_name: str | None = Field(default=None, max_length=50)
    factory_code: str | None = Field(default=None, max_length=50)
    meter_area_no: str | None = Field(default=None, max_length=50)
    meter_define_no1: str | None = Field(default=None, max_length=50)
    meter_define_no2: str | None = Field(default=None, max_length=50)
    meter_define_no3: str | None = Field(default=None, max_length=50)
    meter_define_no4: str | None = Field(default=None, max_length=50)
    data_type_name: str | None = Field(default=None, max_length=50)
    std_sum: int | None = big(default=None)
    work_sum: int | None = big(default=None)
    std_flow: int | None = big(default=None)
    work_flow: int | None = big(default=None)
    temperature: int | None = big(default=None)
    pressure: int | None = big(default=None)
    magatt_times: int | None = None
    this_month_sum: int | None = big(default=None)
    last_month_sum: int | None = big(default=None)
    this_cycle_sum: int | None = big(default=None)
    last_cycle_sum: int | None = big(default=None)
    remain_money: int | None = big(default=None)
    remain_volume: int | None = big(default=None)
    curr_price: int | None = big(default=None)
    meter_state: int | None = None
    meter_stat_emsg: str | None = Field(default=None, sa_type=sa.Text)
    rssi: int | None = None
    battery_voltage: int | None = big(default=None)
    battery_level: int | None = None
    ext_data: str | None = Field(default=None, sa_type=sa.Text)  # JSON text, as received
    stored_at: datetime = now_column()


class MeterLatest(SQLModel, table=True):
    """Which stored reading is a meter's latest (any data type), for the real-time queries.

    Updated by every reading: on PostgreSQL its pages are 70 % filled (migration
    c3d4e5f6a7b8), so updates stay on their page.
    """

    __tablename__ = "meter_latest"

    company_no: str = Field(primary_key=True, max_length=10)
    meter_comm_no: str = Field(primary_key=True, max_length=50)
    data_type: int
    acquisition_time: datetime = instant()
    receive_time: datetime | None = instant(default=None, index=True)


class DeviceAlarm(SQLModel, table=True):
    __tablename__ = "device_alarm"
    __table_args__ = (
        sa.UniqueConstraint("company_no", "device_comm_no", "alarm_time", "alarm_code"),
        sa.Index("ix_device_alarm_company_time", "company_no", "alarm_time"),
    )

    alarm_id: int | None = Field(default=None, primary_key=True)
    company_no: str = Field(max_length=10)
    device_comm_no: str = Field(max_length=50)
    device_type: str | None = Field(default=None, max_length=50)
    alarm_time: datetime = instant()
    receive_time: datetime | None = instant(default=None)
    alarm_code: int
    alarm_content: str | None = Field(default=None, max_length=500)
    alarm_data: str | None = Field(default=None, sa_type=sa.Text)
    stored_at: datetime = now_column()


class DeviceEvent(SQLModel, table=True):
    __tablename__ = "device_event"
    __table_args__ = (
        sa.UniqueConstraint("company_no", "device_comm_no", "event_time", "event_code"),
        sa.Index("ix_device_event_company_time", "company_no", "event_time"),
    )

    event_id: int | None = Field(default=None, primary_key=True)
    company_no: str = Field(max_length=10)
    device_comm_no: str = Field(max_length=50)
    device_type: str | None = Field(default=None, max_length=50)
    event_time: datetime = instant()
    receive_time: datetime | None = instant(default=None)
    event_code: int
    event_content: str | None = Field(default=None, max_length=500)
    event_data: str | None = Field(default=None, sa_type=sa.Text)
    stored_at: datetime = now_column()


class PushConflict(SQLModel, table=True):
    """A re-push that differed from what was stored: the first stays, this one is kept.

    One row per stored record and differing value (its `fingerprint`): the same
    value seen again counts (`times_seen`, `last_seen_at`); another value is
    another row. A clerk dismisses it (`dismissed`) or an auditor accepts the
    correction (`accepted`); `reviewed` is set by either.
    """

    __tablename__ = "push_conflict"
    __table_args__ = (
        sa.Index("ix_push_conflict_reviewed_received", "reviewed", "received_at"),
        sa.UniqueConstraint("kind", "company_no", "natural_key", "fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # reading | alarm | event
    company_no: str = Field(max_length=10)
    natural_key: str = Field(max_length=300)
    first: str = Field(sa_type=sa.Text)  # JSON of the stored values that differ
    second: str = Field(sa_type=sa.Text)  # JSON of the re-pushed values
    received_at: datetime = now_column()
    reviewed: bool = False
    fingerprint: str = Field(default="", max_length=64)  # sha256 of the re-pushed values
    times_seen: int = big(default=1)
    last_seen_at: datetime | None = instant(default=None)
    status: str = Field(default="open", max_length=10)  # open | accepted | dismissed
    reviewed_by: str | None = Field(default=None, max_length=64)
    reviewed_at: datetime | None = instant(default=None)
    review_reason: str = Field(default="", sa_type=sa.Text)


class BillingInbox(SQLModel, table=True):
    """A stored frozen reading waiting to be billed; written in the same transaction as it.

    Worked off by the inbox worker, which bills and stamps `handled_at` in one
    transaction, so each reading is billed exactly once even if the process
    dies between storing and billing.
    """

    __tablename__ = "billing_inbox"
    __table_args__ = (sa.Index("ix_billing_inbox_pending", "handled_at", "id"),)

    id: int | None = Field(default=None, sa_type=BIG_ID, primary_key=True)
    company_no: str = Field(max_length=10)
    meter_comm_no: str = Field(max_length=50)
    acquisition_time: datetime = instant()
    stored_at: datetime = now_column()
    handled_at: datetime | None = instant(default=None)
    outcome: str = Field(default="", max_length=200)


class PollMark(SQLModel, table=True):
    """Query mode: how far polling a platform has got, per company and kind of data."""

    __tablename__ = "poll_mark"

    company_no: str = Field(primary_key=True, max_length=10)
    kind: str = Field(primary_key=True, max_length=10)  # reading | alarm | event
    mark_at: datetime = instant()
    updated_at: datetime = now_column()
