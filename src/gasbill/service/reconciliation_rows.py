"""Reconciliation's records: which accounts a pass covers, and the facts read for them.

Plain tuples, set-based: a report covers a million accounts. The database
adapter (adapters/db/repositories/reconciliation*.py) reads them, one query
per kind of fact for a whole range of accounts; the service compares them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import NamedTuple


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
