"""Reconciliation's records: which accounts a pass covers, and the facts read for them.

Plain tuples, set-based: a report covers a million accounts. The database
adapter (adapters/db/repositories/reconciliation*.py) reads them, one query
per kind of fact for a whole range of accounts; the service compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple


@dataclass(frozen=True, slots=True)
class Scope:
    """Which accounts: ids in [lo, hi] (None: any), of one company, or only these ids."""

    lo: int | None
    hi: int | None
    company_no: str | None = None
    account_ids: Sequence[int] | None = None


class AccountRow(NamedTuple):
    account_id: int
    number: str
    company_no: str
    mode: str
    tariff_id: str
    persons: int
    opened_on: date
    cutoff_fen: int
    reopen_fen: int
    meter_id: int
    comm_no: str
    bound_at: datetime
    opening_litres: int
    prepaid_la: int | None
    prepaid_posted: int
    credit_la: int | None
    credit_posted: int
    below_cutoff_since: datetime | None


class ReadingRow(NamedTuple):
    """A frozen reading with a balance, and meter_credit (and holds in flight) at its time."""

    account_id: int
    comm_no: str
    at: datetime
    remain_milli: int
    curr_price_milli: int | None
    credit_fen: int
    in_flight_fen: int


class ReplyRow(NamedTuple):
    """A command's latest answer; for a top-up meter_credit then, for a charge state the
    top-ups the ledger had posted (and had in flight) then, since the meter was bound."""

    account_id: int
    command_id: int
    at: datetime
    return_data: str
    credit_fen: int = 0
    in_flight_fen: int = 0
    posted_times: int = 0
    posted_fen: int = 0
    in_flight_times: int = 0


class HoldRow(NamedTuple):
    account_id: int
    transfer_id: str
    amount_fen: int
    start: datetime
    end: datetime | None
    posted: bool


class ValveRow(NamedTuple):
    account_id: int
    command_id: int
    ctrl_type: str
    status: str
    at: datetime | None


class ReplacementRow(NamedTuple):
    account_id: int
    binding_id: int
    old_comm_no: str
    removed_at: datetime
    final_litres: int | None
    last_at: datetime | None
    last_litres: int | None
    stray: int
    new_comm_no: str | None
    opening_litres: int | None
    first_at: datetime | None
    first_litres: int | None


class LedgerSums(NamedTuple):
    """A prepaid account's posted transfers, signed: by `as_of` per kind, and all of them."""

    payments_fen: int
    charges_fen: int
    other_fen: int
    summed_fen: int


@dataclass(frozen=True, slots=True)
class MeterGroup:
    """Meter-mode accounts that passed every integer check and share what the rest needs."""

    count: int
    first_id: int
    tariff_id: str
    persons: int
    opened_on: date
    confirmed_key: str | None
    state_data: str
    posted_times: int
    posted_fen: int
    reading_at: datetime
    curr_price_milli: int | None
    price_data: str | None
    price_at: datetime | None

    def key(self) -> tuple[Any, ...]:
        return (
            self.tariff_id,
            self.persons,
            self.opened_on,
            self.confirmed_key,
            self.state_data,
            self.posted_times,
            self.posted_fen,
            self.reading_at,
            self.curr_price_milli,
            self.price_data,
            self.price_at,
        )


@dataclass(slots=True)
class Verdicts:
    """A range's first pass: agreeing system-mode accounts counted, meter-mode groups to
    finish, and the ids that need the full path."""

    system_agreeing: int
    groups: list[MeterGroup]
    unsure: list[int]
