"""What the platform keeps of the fleet's data, for query mode (§1.2, §3.1.2–§3.3.2)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from iotsim.queries import Page, Window


@dataclass(frozen=True, slots=True)
class Row:
    when: datetime  # acquisition (alarm, event) time
    received: datetime
    comm_no: str
    body: dict[str, Any]  # the wire shape, as served


def data_guid(comm_no: str, data_type: int, acquired: datetime) -> str:
    """A stable 16-byte id as base64, like the platform's `data_guid`."""
    digest = hashlib.md5(
        f"{comm_no}|{data_type}|{acquired.isoformat()}".encode(), usedforsecurity=False
    )
    return base64.b64encode(digest.digest()).decode("ascii")


def _page(rows: Sequence[Row], page: Page) -> tuple[int, list[dict[str, Any]]]:
    chosen = rows[page.start : page.start + page.count]
    return len(rows), [r.body for r in chosen]


class DataStore:
    def __init__(self, company_no: str) -> None:
        self.company_no = company_no
        self.readings: list[Row] = []
        self.latest: dict[str, Row] = {}
        self.alarms: list[Row] = []
        self.events: list[Row] = []

    def add_reading(self, body: dict[str, Any], acquired: datetime, received: datetime) -> str:
        guid = data_guid(body["meter_comm_no"], body["data_type"], acquired)
        stored = {"data_guid": guid, "company_no": self.company_no, **body}
        row = Row(acquired, received, body["meter_comm_no"], stored)
        self.readings.append(row)
        current = self.latest.get(row.comm_no)
        if current is None or (acquired, received) >= (current.when, current.received):
            self.latest[row.comm_no] = row
        return guid

    def add_device_record(
        self, kind: str, body: dict[str, Any], when: datetime, received: datetime
    ) -> int:
        rows = self.alarms if kind == "alarm" else self.events
        record_id = len(rows) + 1
        stored = {
            f"{kind}_id": record_id,
            "company_no": self.company_no,
            **body,
        }
        rows.append(Row(when, received, body["device_comm_no"], stored))
        return record_id

    # -- queries ----------------------------------------------------------------------------
    def latest_of(self, comm_no: str) -> dict[str, Any] | None:
        row = self.latest.get(comm_no)
        return None if row is None else row.body

    def latest_list(
        self,
        *,
        comm_nos: list[str] | None,
        acquired: Window,
        received: Window,
        order_by: str,
        descending: bool,
        page: Page,
    ) -> tuple[int, list[dict[str, Any]]]:
        wanted = None if comm_nos is None else set(comm_nos)
        rows = [
            r
            for r in self.latest.values()
            if (wanted is None or r.comm_no in wanted)
            and acquired.holds(r.when)
            and received.holds(r.received)
        ]
        key: Callable[[Row], Any] = {
            "acquisition_time": lambda r: (r.when, r.comm_no),
            "receive_time": lambda r: (r.received, r.comm_no),
        }.get(order_by, lambda r: (str(r.body.get(order_by) or ""), r.comm_no))
        return _page(sorted(rows, key=key, reverse=descending), page)

    def history(
        self, *, comm_no: str | None, data_type: int | None, acquired: Window, page: Page
    ) -> tuple[int, list[dict[str, Any]]]:
        rows = [
            r
            for r in self.readings
            if (comm_no is None or r.comm_no == comm_no)
            and (data_type is None or r.body["data_type"] == data_type)
            and acquired.holds(r.when)
        ]
        return _page(sorted(rows, key=lambda r: (r.when, r.comm_no, r.body["data_type"])), page)

    def device_records(
        self,
        kind: str,
        *,
        comm_no: str | None,
        device_type: int | None,
        when: Window,
        page: Page,
    ) -> tuple[int, list[dict[str, Any]]]:
        rows = [
            r
            for r in (self.alarms if kind == "alarm" else self.events)
            if (comm_no is None or r.comm_no == comm_no)
            and (device_type is None or r.body["device_type"] == str(device_type))
            and when.holds(r.when)
        ]
        return _page(sorted(rows, key=lambda r: (r.when, r.body[f"{kind}_id"])), page)
