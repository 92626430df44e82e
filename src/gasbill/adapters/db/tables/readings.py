"""Readings as the platform sends them (spec §4.1), kept exactly.

Every decimal(18,3) is stored in thousandths as a 64-bit integer, so what was
pushed is served back exactly. The key includes the acquisition time, so the
table can be partitioned by month when a utility needs it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import big, instant, now_column


class MeterReading(SQLModel, table=True):
    __tablename__ = "meter_reading"
    __table_args__ = (
        sa.Index(
            "ix_meter_reading_meter_type_time",
            "company_no",
            "meter_comm_no",
            "data_type",
            "acquisition_time",
        ),
        sa.Index("ix_meter_reading_receive_time", "receive_time"),
    )

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
