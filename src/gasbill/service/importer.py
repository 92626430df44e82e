"""Bulk import of readings: the push path (validation, dedupe, inbox) in batches.

The file's reader (adapters/import_file) validates each line as a push is validated and
hands over `Record`s; this stores them through the unit of work's reading transactions.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from gasbill.service.ingest import IngestPolicy, RejectedPush, Stored, reading_row, store_rows_in
from gasbill.service.ingest_records import PushedReading
from gasbill.service.store_ports import ReadingRepository


class Record(NamedTuple):  # a tuple: one is made per line, and cheaply
    """A line of a readings file: its reading, validated as a push is, or why not."""

    line: int
    reading: PushedReading | None
    problem: str = ""


class ImportUnitOfWork(Protocol):
    def reading_transaction(self) -> AbstractContextManager[ReadingRepository]:
        """A reading store in a transaction of its own, committed when the block ends
        without error (each writer thread takes its own)."""
        ...


REGISTERS = (
    "std_sum",
    "work_sum",
    "this_month_sum",
    "last_month_sum",
    "this_cycle_sum",
    "last_cycle_sum",
)


def _no_negative_register(reading: PushedReading) -> None:
    """A register counts gas up from zero: a negative one is a broken file, not a reading."""
    for name in REGISTERS:
        value = getattr(reading, name)
        if value is not None and value < 0:
            raise RejectedPush(f"{name}: a register cannot be negative ({value})")


@dataclass(slots=True)
class ImportSummary:
    read: int = 0
    stored: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0

    def count(self, results: list[Stored]) -> None:
        """A written batch: each reading new (stored) or already there (a duplicate, and a
        conflict if its values differ)."""
        for result in results:
            if result.new:
                self.stored += 1
            else:
                self.duplicates += 1
                self.conflicts += int(result.conflict)


def _row_of(
    item: Record, company_no: str, policy: IngestPolicy, now: datetime
) -> tuple[dict[str, object] | None, str]:
    """The record's reading row as a push would store it, or (None, why it is rejected)."""
    reading = item.reading
    if reading is None:
        return None, item.problem
    try:
        _no_negative_register(reading)
        return reading_row(company_no, reading, policy, now), ""
    except RejectedPush as exc:
        return None, str(exc)


def import_readings(
    uow: ImportUnitOfWork,
    company_no: str,
    items: Iterable[Record],
    policy: IngestPolicy,
    *,
    batch: int = 5000,
    writers: int = 2,
    reject: Callable[[int, str], None],
    progress: Callable[[int], None] = lambda n: None,
    now: datetime | None = None,
) -> ImportSummary:
    """Validate each record as a push would; store the good ones a batch per transaction.

    A batch is written in a thread while the next is read and validated (the
    database works while Python parses); at most one is in flight, in file order.
    A failure to write stops the import; what was committed stays, and running
    the import again stores only what is missing.
    """
    now = now or datetime.now(UTC)
    summary = ImportSummary()
    pending: list[dict[str, object]] = []

    def write(rows: list[dict[str, object]]) -> list[Stored]:
        with uow.reading_transaction() as store:
            return store_rows_in(store, rows)

    def tally(results: list[Stored]) -> None:
        summary.count(results)
        progress(len(results))

    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="import-writer") as pool:
        in_flight: deque[Future[list[Stored]]] = deque()

        def flush() -> None:
            if not pending:
                return
            rows = pending.copy()
            pending.clear()
            if len(in_flight) >= writers:
                tally(in_flight.popleft().result())
            in_flight.append(pool.submit(write, rows))

        for item in items:
            summary.read += 1
            row, problem = _row_of(item, company_no, policy, now)
            if row is None:
                summary.rejected += 1
                reject(item.line, problem)
                progress(1)
                continue
            pending.append(row)
            if len(pending) >= batch:
                flush()
        flush()
        while in_flight:
            tally(in_flight.popleft().result())
    return summary
