"""Where each account's price-change true-up stands (`true_up_mark`), and where the next run
starts from.

A mark holds the tariff in force's rating state after the last reading that ended a day,
with the start and the inputs (`basis`) it was rated with. The next run skips an account
whose mark still holds and which billing has re-rated nothing since, re-rates from the
mark's state when billing re-rated nothing before it, and from the start otherwise: either
way it posts what the whole re-rating would, to the fen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from gasbill.domain.meters import MetersRated
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.billing_days import STATE_COLUMNS, checkpoint_of
from gasbill.service.billing_ports import ChargeDayRecord
from gasbill.service.ports import AccountRecord, BindingRecord, MeterRecord, TariffBook

# an account to true up: the account (locked), the price changes its meter held and when,
# and where the divergence still open starts
Plan = tuple[AccountRecord, dict[str, datetime], datetime]
Bound = Mapping[int, Sequence[tuple[BindingRecord, MeterRecord]]]


class MarkRecord(Protocol):
    """A stored mark (`true_up_mark`)."""

    account_id: int
    start_at: datetime
    basis: str
    cycle_key: str
    day: date
    state_at: datetime
    state_register: int
    state_cycle_start: datetime
    state_cycle_end: datetime
    state_version: int
    state_used: int
    state_cost: int
    billed_through: datetime | None
    rebilled_from: date | None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A rating state to start from (a `ChargeDayRecord`), made without the ORM."""

    account_id: int
    cycle_key: str
    day: date
    posted_fen: int = 0
    state_at: datetime | None = None
    state_register: int | None = None
    state_cycle_start: datetime | None = None
    state_cycle_end: datetime | None = None
    state_version: int | None = None
    state_used: int | None = None
    state_cost: int | None = None


def still_marked(
    marks: Mapping[int, MarkRecord],
    waiting: set[tuple[str, str]],
    plans: Mapping[int, Plan],
    bases: Mapping[int, str],
    bindings: Bound,
) -> tuple[dict[int, MarkRecord], set[int]]:
    """The accounts to re-rate from their mark on, and those to skip: each mark made with
    the same start and inputs, with no reading of its meters `waiting` to be billed (a
    late one may lie before the mark), and with nothing billing re-rated up to its day."""
    resume: dict[int, MarkRecord] = {}
    skip: set[int] = set()
    for i, plan in plans.items():
        mark = marks.get(i)
        if mark is None or mark.start_at != plan[2] or mark.basis != bases[i]:
            continue
        if meters_of(bindings, i) & waiting:
            continue
        if mark.rebilled_from is None:
            skip.add(i)  # billing has re-rated nothing since: nothing is owed anew
        elif mark.rebilled_from > mark.day:
            resume[i] = mark
    return resume, skip


def meters_of(bindings: Bound, account_id: int) -> set[tuple[str, str]]:
    return {(m.company_no, m.comm_no) for _, m in bindings.get(account_id, [])}


def basis_of(
    plan: Plan,
    bindings: Sequence[tuple[BindingRecord, MeterRecord]],
    opened_at: datetime | None,
    catalog: TariffBook,
    max_flow: Decimal | None,
    digests: dict[str, str],
) -> str:
    """A digest of what a true-up's rating depends on besides the readings and the charges:
    a mark made with other inputs (a reloaded tariff, a new confirmation, a replaced meter)
    no longer holds."""
    account, held, _ = plan
    if account.tariff_id not in digests:
        tariff = catalog.get(account.tariff_id)
        digests[account.tariff_id] = hashlib.sha256(repr(tariff).encode()).hexdigest()
    parts = [
        digests[account.tariff_id],
        account.tariff_id,
        str(account.persons),
        str(account.opened_on),
        str(account.billing_mode),
        repr(sorted(held.items())),
        repr(opened_at),
        repr(max_flow),
        repr(
            [
                (
                    m.company_no,
                    m.comm_no,
                    b.bound_at,
                    b.opening_litres,
                    b.unbound_at,
                    b.final_litres,
                )
                for b, m in bindings
            ]
        ),
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def first_day(plan: Plan, mark: MarkRecord | None, catalog: TariffBook) -> date:
    """The first day trued up: the start's, or the day after the mark's."""
    account, _, start = plan
    first = start.astimezone(ZoneInfo(catalog.get(account.tariff_id).zone)).date()
    if mark is None:
        return first
    return max(first, mark.day + timedelta(days=1))


def new_mark(
    account_id: int,
    start: datetime,
    basis: str,
    official: MetersRated,
    old: MarkRecord | None,
    volume_basis: VolumeBasis,
    now: datetime,
) -> dict[str, Any] | None:
    """The account's new mark: the tariff in force's state after the last reading that
    ended a day (the old mark's when none came since); None: none to resume from."""
    found = checkpoint_of(official.result, volume_basis)
    if not found and official.day_end is not None:
        found = checkpoint_of(official.day_end, volume_basis)
    last = official.result.state.last
    row: dict[str, Any] = {
        "account_id": account_id,
        "start_at": start,
        "basis": basis,
        "billed_through": last.at if last is not None else None,
        "rebilled_from": None,
        "updated_at": now,
    }
    if found:
        ((cycle_key, day), state), *_ = found.items()
        return row | {"cycle_key": cycle_key, "day": day, **state}
    if old is None:
        return None
    return row | {
        "cycle_key": old.cycle_key,
        "day": old.day,
        **{name: getattr(old, name) for name in STATE_COLUMNS},
    }


def resumed(mark: MarkRecord) -> Checkpoint:
    """A mark's state as a checkpoint to rate the tariff in force on from."""
    return Checkpoint(
        account_id=mark.account_id,
        cycle_key=mark.cycle_key,
        day=mark.day,
        **{name: getattr(mark, name) for name in STATE_COLUMNS},
    )


def fresh(checkpoint: ChargeDayRecord | None) -> Checkpoint | None:
    """A billing checkpoint as a bare starting reading: both ratings start from it afresh."""
    if checkpoint is None or checkpoint.state_at is None:
        return None
    return Checkpoint(
        account_id=checkpoint.account_id,
        cycle_key="",
        day=checkpoint.day,
        state_at=checkpoint.state_at,
        state_register=checkpoint.state_register,
        state_used=0,
        state_cost=0,
    )
