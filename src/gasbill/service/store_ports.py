"""The service's ports for what the platform pushes and polls: the reading store, the push
conflicts kept for review, the billing inbox and the poller's marks (on the unit of work
as `uow.readings`, `uow.conflicts`, `uow.inbox`, `uow.poll_marks`; adapters/db implements
them). Re-exported by `service.ports`.

Readings travel as rows (column name to value, decimals as thousandths): ingest builds
them from the service's records (service/ingest_records.py) and the store writes them in
bulk, as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

Row = dict[str, Any]


class BindingHistoryRecord(Protocol):
    """An account's use of a meter, as the inbox reads it."""

    account_id: int
    bound_at: datetime
    unbound_at: datetime | None


class InboxRowRecord(Protocol):
    """A stored frozen reading waiting to be billed."""

    id: int | None
    company_no: str
    meter_comm_no: str
    acquisition_time: datetime


class InboxRepository(Protocol):
    def claim(self, limit: int) -> Sequence[InboxRowRecord]:
        """The oldest unhandled rows, locked for this transaction (skipped by others)."""

    def pending(self) -> int: ...

    def bindings_of(
        self, meters: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], Sequence[BindingHistoryRecord]]:
        """Every binding, past and present, of these meters, oldest first, by
        (company_no, comm_no)."""

    def mark_handled(self, outcomes: dict[int, str], at: datetime) -> None:
        """Stamp the rows handled, each with its outcome."""


class PushConflictRecord(Protocol):
    """A re-push that differed from what was stored, once per record and value."""

    id: int | None
    kind: str  # reading | alarm | event
    company_no: str
    natural_key: str
    first: str  # JSON of the stored values that differ
    second: str  # JSON of the re-pushed values
    received_at: datetime
    reviewed: bool
    times_seen: int
    last_seen_at: datetime | None
    status: str  # open | accepted | dismissed
    reviewed_by: str | None
    reviewed_at: datetime | None
    review_reason: str


class ConflictRepository(Protocol):
    def get(self, conflict_id: int, *, lock: bool = False) -> PushConflictRecord | None: ...

    def find(self, *, statuses: Sequence[str] | None, limit: int) -> Sequence[PushConflictRecord]:
        """Oldest first."""

    def save(self, row: PushConflictRecord) -> PushConflictRecord: ...

    def reading(
        self, company_no: str, meter_comm_no: str, data_type: int, at: datetime, *, lock: bool
    ) -> Row | None:
        """The stored reading the conflict concerns (locked with `lock`)."""

    def replace_reading_values(
        self, company_no: str, meter_comm_no: str, data_type: int, at: datetime, values: Row
    ) -> None: ...


class ReadingRepository(Protocol):
    """Readings, alarms and events as pushed or polled, stored once by their keys."""

    def store_new(self, rows: Sequence[Row], billed_type: int) -> set[tuple[Any, ...]]:
        """Insert the rows whose keys are not stored (queueing `billed_type` ones for
        billing); the keys inserted."""

    def readings(self, keys: Sequence[Row]) -> list[Row]:
        """The stored readings of these keys."""

    def add_conflict(
        self, *, kind: str, company_no: str, key: str, first: str, second: str, at: datetime
    ) -> None:
        """Keep a differing re-push for review (once per record and value, counted)."""

    def insert_device_record(self, kind: str, row: Row) -> int | None:
        """Store an alarm or event unless its key is stored; its new id, or None."""

    def device_record(self, kind: str, row: Row) -> Row | None: ...


# a reading store in a transaction of its own, committed when the block ends without error
# (the group commit of concurrent pushes, an import's writer threads)
ReadingTransaction = Callable[[], AbstractContextManager[ReadingRepository]]


class PollMarkRepository(Protocol):
    def mark_at(self, company_no: str, kind: str) -> datetime | None:
        """How far polling `kind` (reading, alarm, event) of the company has got."""

    def move(self, company_no: str, kind: str, at: datetime, now: datetime) -> None: ...
