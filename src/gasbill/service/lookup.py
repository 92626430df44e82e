"""Finding an account the way a customer names it, and what its meters reported.

A customer at the counter gives an account number or reads the number off
the meter; both find the account (a meter's number finds the account it is
bound to now, else the last one it was bound to). An account's readings are
those of each meter while it was bound to the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from gasbill.service import ports
from gasbill.service.accounts import NotFound


def find_account(
    uow: ports.UnitOfWork, *, number: str | None = None, meter: str | None = None
) -> ports.AccountRecord:
    """The account with this number, or the one this meter is (or was last) bound to."""
    with uow:
        found: ports.AccountRecord | None = None
        if number:
            found = uow.accounts.by_number(number.strip())
        elif meter:
            found = uow.accounts.account_of_meter(meter.strip())
        if found is None:
            what = f"account number {number!r}" if number else f"meter {meter!r}"
            raise NotFound(f"no account for {what}")
        return found


@dataclass(frozen=True, slots=True)
class ReadingLine:
    meter_comm_no: str
    acquisition_time: datetime
    data_type: int
    std_sum: str | None  # m³, 3 decimals
    work_sum: str | None
    remain_money: str | None  # yuan, as the meter reported it
    curr_price: str | None
    meter_state: int | None


def _thousandths(value: int | None) -> str | None:
    """A decimal(18,3) as stored (thousandths), back to its text: exact."""
    return None if value is None else f"{Decimal(value) / 1000:.3f}"


def account_readings(
    uow: ports.UnitOfWork,
    account_id: int,
    *,
    frozen_only: bool = True,
    offset: int = 0,
    limit: int = 100,
) -> list[ReadingLine]:
    """The account's readings, newest first: each meter's while it was bound to it."""
    with uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"no account {account_id}")
        rows = uow.accounts.readings_while_bound(
            account_id, frozen_only=frozen_only, offset=offset, limit=limit
        )
        return [
            ReadingLine(
                meter_comm_no=r.meter_comm_no,
                acquisition_time=r.acquisition_time,
                data_type=r.data_type,
                std_sum=_thousandths(r.std_sum),
                work_sum=_thousandths(r.work_sum),
                remain_money=_thousandths(r.remain_money),
                curr_price=_thousandths(r.curr_price),
                meter_state=r.meter_state,
            )
            for r in rows
        ]
