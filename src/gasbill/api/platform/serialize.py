"""Stored rows back into the platform's wire shapes, exactly as they were pushed."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.platform.times import format_platform_time
from gasbill.service.ingest import DECIMAL_FIELDS, PLAIN_FIELDS

READING_FIELDS = (
    "meter_comm_no",
    "device_type",
    "device_type_name",
    "factory_code",
    "meter_area_no",
    "meter_define_no1",
    "meter_define_no2",
    "meter_define_no3",
    "meter_define_no4",
    "data_type",
    "data_type_name",
    "acquisition_time",
    "receive_time",
    "std_sum",
    "work_sum",
    "std_flow",
    "work_flow",
    "temperature",
    "pressure",
    "magatt_times",
    "this_month_sum",
    "last_month_sum",
    "this_cycle_sum",
    "last_cycle_sum",
    "remain_money",
    "remain_volume",
    "curr_price",
    "meter_state",
    "meter_stat_emsg",
    "rssi",
    "battery_voltage",
    "battery_level",
    "ext_data",
)
assert set(DECIMAL_FIELDS) | set(PLAIN_FIELDS) <= set(READING_FIELDS)


def _time(value: datetime | None, zone: ZoneInfo) -> str | None:
    return None if value is None else format_platform_time(value, zone)


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text, parse_float=Decimal)


def reading(row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "data_guid": base64.b64encode(row["data_guid"]).decode("ascii"),
        "company_no": row["company_no"],
    }
    for name in READING_FIELDS:
        value = row.get(name)
        if name in DECIMAL_FIELDS:
            value = None if value is None else Decimal(value).scaleb(-3)
        elif name in ("acquisition_time", "receive_time"):
            value = _time(value, zone)
        elif name == "ext_data":
            value = _json(value)
        out[name] = value
    return out


def device_record(kind: str, row: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    return {
        f"{kind}_id": row[f"{kind}_id"],
        "company_no": row["company_no"],
        "device_comm_no": row["device_comm_no"],
        "device_type": row["device_type"],
        f"{kind}_time": _time(row[f"{kind}_time"], zone),
        "receive_time": _time(row["receive_time"], zone),
        f"{kind}_code": row[f"{kind}_code"],
        f"{kind}_content": row[f"{kind}_content"],
        f"{kind}_data": _json(row[f"{kind}_data"]),
    }
