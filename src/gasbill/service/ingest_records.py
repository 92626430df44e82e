"""What ingest takes: the platform's readings, alarms and events as the service's records.

The entry points (the push route, the poller's data client, the import-file
reader) validate the vendor's wire format and build these; the service never
sees the wire models. Times stay the platform's text here: ingest parses them
with the policy's `TimeParser` (the platform adapter's), in its zone, and refuses
absurd ones naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo


class TimeParser(Protocol):
    def __call__(self, text: str, zone: ZoneInfo, /) -> datetime:
        """An aware UTC datetime from the platform's text (naive text is in `zone`); a
        ValueError naming the problem when the text is not one of the platform's forms."""
        ...

    def __hash__(self) -> int: ...  # ingest caches what it parsed by text, zone and parser


class PushedReading(NamedTuple):
    """A validated reading (spec §4.1), its fields in the wire model's order (which is held
    to this one). A tuple: one is made per reading, and cheaply."""

    meter_comm_no: str
    data_type: int
    acquisition_time: str
    receive_time: str | None = None
    device_type: int | None = None
    device_type_name: str | None = None
    factory_code: str | None = None
    meter_area_no: str | None = None
    meter_define_no1: str | None = None
    meter_define_no2: str | None = None
    meter_define_no3: str | None = None
    meter_define_no4: str | None = None
    data_type_name: str | None = None
    std_sum: Decimal | None = None
    work_sum: Decimal | None = None
    std_flow: Decimal | None = None
    work_flow: Decimal | None = None
    temperature: Decimal | None = None
    pressure: Decimal | None = None
    magatt_times: int | None = None
    this_month_sum: Decimal | None = None
    last_month_sum: Decimal | None = None
    this_cycle_sum: Decimal | None = None
    last_cycle_sum: Decimal | None = None
    remain_money: Decimal | None = None
    remain_volume: Decimal | None = None
    curr_price: Decimal | None = None
    meter_state: int | None = None
    meter_stat_emsg: str | None = None
    rssi: int | None = None
    battery_voltage: Decimal | None = None
    battery_level: int | None = None
    ext_data: Mapping[str, object] | None = None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """A validated alarm (spec §4.5) or event (§4.7): `kind` is alarm or event, and the
    other fields are its `<kind>_time`, `<kind>_code`, `<kind>_content`, `<kind>_data`."""

    kind: str
    device_comm_no: str
    device_type: str | None
    time: str
    receive_time: str | None
    code: int
    content: str | None
    data: Mapping[str, object] | None
