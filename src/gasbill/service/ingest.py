"""Ingest: store what the platform pushes exactly once, and queue frozen readings for billing.

A reading already stored (same company, meter, data type and acquisition
time) is answered with the data_guid first given and stores nothing new; if
the re-push differs, the first stays and the difference is kept as a
conflict for review. A new frozen reading gets an inbox row in the same
transaction, so billing it cannot be lost between storing and billing.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from gasbill import jsontext
from gasbill.service.ingest_records import DeviceRecord, PushedReading, TimeParser
from gasbill.service.ports import ReadingRepository, ReadingTransaction, UnitOfWork
from gasbill.service.store_ports import Row

# a reading's natural key: company, meter, data type, acquisition time (aware)
ReadingKey = tuple[str, str, int, datetime]
# the fields of a re-push that differ from what is stored: (stored, re-pushed)
Differences = dict[str, tuple[object, object]]

log = logging.getLogger("gasbill.ingest")
FROZEN = 1
DECIMAL_FIELDS = (
    "std_sum",
    "work_sum",
    "std_flow",
    "work_flow",
    "temperature",
    "pressure",
    "this_month_sum",
    "last_month_sum",
    "this_cycle_sum",
    "last_cycle_sum",
    "remain_money",
    "remain_volume",
    "curr_price",
    "battery_voltage",
)
PLAIN_FIELDS = (
    "device_type",
    "device_type_name",
    "factory_code",
    "meter_area_no",
    "meter_define_no1",
    "meter_define_no2",
    "meter_define_no3",
    "meter_define_no4",
    "data_type_name",
    "magatt_times",
    "meter_state",
    "meter_stat_emsg",
    "rssi",
    "battery_level",
)
# what a re-push is compared on: everything it carries but the ids we gave
COMPARED = ("receive_time", *DECIMAL_FIELDS, *PLAIN_FIELDS, "ext_data")
# where each is in a reading (a tuple: indexing it costs what a dict's lookup did)
_DECIMAL_AT = tuple((name, PushedReading._fields.index(name)) for name in DECIMAL_FIELDS)
_PLAIN_AT = tuple((name, PushedReading._fields.index(name)) for name in PLAIN_FIELDS)


class RejectedPush(ValueError):
    """A push that validates as JSON but not as data (a time in the future, say)."""


@dataclass(frozen=True, slots=True)
class IngestPolicy:
    platform_zone: ZoneInfo
    max_future: timedelta = timedelta(days=1)
    parse_time: TimeParser = field(kw_only=True)  # the platform's forms (its adapter's)


class Stored(NamedTuple):  # a tuple: one is made per reading, and cheaply
    id: str | int  # data_guid (base64) for readings, alarm_id / event_id otherwise
    new: bool
    conflict: bool = False


def uuid4_bytes(count: int) -> bytes:
    """`count` random version-4 UUIDs, 16 bytes each (the vendor's data_guid is a uuid)."""
    raw = bytearray(os.urandom(16 * count))
    for start in range(0, len(raw), 16):
        raw[start + 6] = (raw[start + 6] & 0x0F) | 0x40  # version 4
        raw[start + 8] = (raw[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(raw)


def guid_text(guid: bytes) -> str:
    """The wire form: base64 of the 16 bytes, as the vendor's sample LA6owvN3SECEP2zL2fkYxg==."""
    return base64.b64encode(guid).decode("ascii")


@lru_cache(maxsize=4096)
def _parsed(text: str, zone: ZoneInfo, parse: TimeParser) -> datetime:
    # a night's frozen readings share a handful of times: parse each text once
    return parse(text, zone)


def _time(text: str | None, field: str, policy: IngestPolicy, now: datetime) -> datetime | None:
    if text is None:
        return None
    try:
        at = _parsed(text, policy.platform_zone, policy.parse_time)
    except ValueError as exc:  # not one of the platform's forms (TimeParser)
        raise RejectedPush(f"{field}: {exc}") from None
    if at > now + policy.max_future:
        raise RejectedPush(
            f"{field}: {text} is more than {policy.max_future} in the future; "
            "check the meter's clock"
        )
    return at


def reading_row(
    company_no: str, reading: PushedReading, policy: IngestPolicy, now: datetime
) -> Row:
    """The row to store for a validated reading: times parsed (and refused when absurd),
    decimals in thousandths."""
    acquired = _time(reading.acquisition_time, "acquisition_time", policy, now)
    assert acquired is not None
    data_type = reading.data_type
    if data_type == FROZEN and reading.std_sum is None and reading.work_sum is None:
        raise RejectedPush("std_sum: a frozen reading needs its cumulative volume")
    ext_data = reading.ext_data
    row: Row = {
        "company_no": company_no,
        "meter_comm_no": reading.meter_comm_no,
        "data_type": data_type,
        "acquisition_time": acquired,
        "receive_time": _time(reading.receive_time, "receive_time", policy, now),
        # canonical (sorted keys), so a re-push in another key order is not a conflict
        "ext_data": None
        if ext_data is None
        else jsontext.dumps_exact(dict(sorted(ext_data.items()))),
        "stored_at": now,
    }
    values: tuple[Any, ...] = reading
    for name, at in _DECIMAL_AT:
        value = values[at]
        row[name] = None if value is None else int(value.scaleb(3))
    for name, at in _PLAIN_AT:
        row[name] = values[at]
    return row


def _differences(stored: Row, incoming: Row) -> Differences:
    return {
        name: (stored.get(name), incoming.get(name))
        for name in COMPARED
        if name in incoming and stored.get(name) != incoming.get(name)
    }


def store_readings(
    uow: UnitOfWork,
    company_no: str,
    readings: Sequence[PushedReading],
    policy: IngestPolicy,
    *,
    now: datetime | None = None,
) -> list[Stored]:
    """Store readings (one push, or a batch of an import) in one transaction."""
    now = now or datetime.now(UTC)
    rows = [reading_row(company_no, r, policy, now) for r in readings]
    with uow:
        results = store_rows_in(uow.readings, rows)
        uow.commit()
    return results


def write_reading_rows(
    transaction: ReadingTransaction, rows: Sequence[Row]
) -> list[Stored | Exception]:
    """Store the rows of concurrent pushes in one transaction (group commit); if that fails,
    each in its own, so a row that cannot be stored fails only its own push."""
    try:
        with transaction() as store:
            return list(store_rows_in(store, rows))
    except Exception:
        if len(rows) == 1:
            raise
        log.warning("a batch of %d readings failed; storing them one by one", len(rows))
    results: list[Stored | Exception] = []
    for row in rows:
        try:
            with transaction() as store:
                results.extend(store_rows_in(store, [row]))
        except Exception as exc:
            log.exception("a pushed reading could not be stored")
            results.append(exc)
    return results


def store_rows_in(store: ReadingRepository, rows: Sequence[Row]) -> list[Stored]:
    """Store validated reading rows through the store, in its transaction (which commits)."""
    keys = [_key(row) for row in rows]
    # the same key twice in one batch: the first is the one stored
    unique: dict[ReadingKey, Row] = {}
    for key, row in zip(keys, rows, strict=True):
        unique.setdefault(key, row)
    # one order for every writer, so concurrent batches cannot deadlock on the unique index
    ordered = [unique[key] for key in sorted(unique)]
    guids = uuid4_bytes(len(ordered))
    for i, row in enumerate(ordered):
        row["data_guid"] = guids[16 * i : 16 * i + 16]
    new_keys = {_normal(*found) for found in store.store_new(ordered, billed_type=FROZEN)}

    old_keys = [row for key, row in unique.items() if key not in new_keys]
    existing = {_key(found): found for found in store.readings(old_keys)}
    results = []
    for key, row in zip(keys, rows, strict=True):
        if key in new_keys and unique[key] is row:
            results.append(Stored(guid_text(row["data_guid"]), new=True))
            continue
        first = existing.get(key) or unique[key]
        differences = _differences(first, row)
        if differences:
            store.add_conflict(
                kind="reading",
                company_no=row["company_no"],
                key=jsontext.dumps_exact(
                    [row["meter_comm_no"], row["data_type"], row["acquisition_time"].isoformat()]
                ),
                first=jsontext.dumps_exact({k: _plain(v[0]) for k, v in differences.items()}),
                second=jsontext.dumps_exact({k: _plain(v[1]) for k, v in differences.items()}),
                at=row["stored_at"],
            )
        results.append(Stored(guid_text(first["data_guid"]), new=False, conflict=bool(differences)))
    return results


def _key(row: Row) -> ReadingKey:
    return _normal(
        row["company_no"], row["meter_comm_no"], row["data_type"], row["acquisition_time"]
    )


def _normal(company_no: str, meter_comm_no: str, data_type: int, at: datetime) -> ReadingKey:
    if at.tzinfo is None:  # SQLite hands back naive UTC through Core
        at = at.replace(tzinfo=UTC)
    return (company_no, meter_comm_no, data_type, at)


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def store_device_record(
    uow: UnitOfWork,
    company_no: str,
    record: DeviceRecord,
    policy: IngestPolicy,
    *,
    now: datetime | None = None,
) -> Stored:
    """Store an alarm or an event once, on (company, device, time, code)."""
    now = now or datetime.now(UTC)
    prefix = record.kind
    when = _time(record.time, f"{prefix}_time", policy, now)
    data = record.data
    row = {
        "company_no": company_no,
        "device_comm_no": record.device_comm_no,
        "device_type": record.device_type,
        f"{prefix}_time": when,
        "receive_time": _time(record.receive_time, "receive_time", policy, now),
        f"{prefix}_code": record.code,
        f"{prefix}_content": record.content,
        f"{prefix}_data": None if data is None else jsontext.dumps_exact(data),
        "stored_at": now,
    }
    with uow:
        store = uow.readings
        new_id = store.insert_device_record(prefix, row)
        if new_id is not None:
            uow.commit()
            return Stored(new_id, new=True)
        first = store.device_record(prefix, row)
        assert first is not None
        compared = ("device_type", "receive_time", f"{prefix}_content", f"{prefix}_data")
        differences = {
            k: (_plain(_aware(first[k])), _plain(row[k]))
            for k in compared
            if _aware(first[k]) != row[k]
        }
        if differences:
            store.add_conflict(
                kind=prefix,
                company_no=company_no,
                key=jsontext.dumps_exact(
                    [row["device_comm_no"], _plain(when), row[f"{prefix}_code"]]
                ),
                first=jsontext.dumps_exact({k: v[0] for k, v in differences.items()}),
                second=jsontext.dumps_exact({k: v[1] for k, v in differences.items()}),
                at=now,
            )
        uow.commit()
        return Stored(int(first[f"{prefix}_id"]), new=False, conflict=bool(differences))


def _aware(value: object) -> object:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
