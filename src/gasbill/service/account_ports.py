"""The accounts port: customers, accounts, meters and their bindings, as use cases read
and add them, and what the decisions read of an account.

Declared here, re-exported by `service.ports`; `adapters/db` implements it
(`AccountRepository`), and the unit of work carries it as `uow.accounts`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from gasbill.domain.ledger import AccountCode, Balance
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.decision_ports import DecisionStateRecord


class CustomerRecord(Protocol):
    """A customer, who holds accounts."""

    id: int | None
    name: str
    phone: str
    address: str


@dataclass(frozen=True, slots=True)
class NewAccountRow:
    """An account to add, as it is stored (its meter and ledger accounts come separately)."""

    number: str
    customer_id: int
    company_no: str
    billing_mode: str  # meter | system
    tariff_id: str
    persons: int
    opened_on: date
    warning_fen: int
    cutoff_fen: int
    reopen_fen: int


@dataclass(frozen=True, slots=True)
class NewBinding:
    """An account starting to use a meter, at `bound_at` with the register `opening_litres`."""

    account_id: int
    meter_id: int
    bound_at: datetime
    opening_litres: int
    reason: str


class BindingRecord(Protocol):
    """An account's use of a meter (from `bound_at` until `unbound_at`)."""

    account_id: int
    meter_id: int
    bound_at: datetime
    unbound_at: datetime | None
    opening_litres: int  # the register when it was bound
    final_litres: int | None  # and when it was unbound
    reason: str  # why it was bound (an opening, a replacement)


class AccountRecord(Protocol):
    """A customer's gas account."""

    id: int | None
    number: str
    customer_id: int
    company_no: str
    billing_mode: str  # meter | system
    tariff_id: str
    persons: int
    opened_on: date
    status: str  # active | closed


class MeterRecord(Protocol):
    """A meter, known by the platform as (company_no, comm_no)."""

    id: int | None
    company_no: str
    comm_no: str


class DecidedAccount(AccountRecord, Protocol):
    """An account with its own thresholds, as the decisions read it."""

    warning_fen: int
    cutoff_fen: int
    reopen_fen: int


class DecisionFacts(Protocol):
    """One active account as its decision sees it, loaded and locked for the caller's
    transaction (`DecisionStateRepository.facts`)."""

    @property
    def account(self) -> DecidedAccount: ...
    @property
    def row(self) -> DecisionStateRecord: ...
    @property
    def meter(self) -> MeterRecord | None: ...
    @property
    def balances(self) -> Mapping[AccountCode, Balance]: ...
    @property
    def remain(self) -> tuple[Money, datetime] | None:
        """The meter's latest reported balance since it was bound to the account, and when."""

    @property
    def daily(self) -> list[Volume]:
        """Litres per frozen day, the last `window_days` billed, oldest first."""

    @property
    def price(self) -> Price:
        """The highest tier's price on the last day charged."""


class ReadingRecord(Protocol):
    """A reading as the platform pushed it; decimals kept as thousandths (decimal(18,3))."""

    meter_comm_no: str
    acquisition_time: datetime
    data_type: int  # 1: the daily frozen reading
    std_sum: int | None
    work_sum: int | None
    remain_money: int | None
    curr_price: int | None
    meter_state: int | None


class AccountRepository(Protocol):
    """Customers, accounts, meters and their bindings (the part use cases behind ports use)."""

    def get(self, account_id: int, *, lock: bool = False) -> DecidedAccount | None:
        """The account; `lock`: for update, until the unit of work ends."""

    def active_ids(self, *, after: int = 0, limit: int | None = None) -> list[int]:
        """The active accounts' ids in order; those above `after`, at most `limit` (a page)."""

    def by_number(self, number: str) -> AccountRecord | None: ...

    def add(self, new: NewAccountRow) -> DecidedAccount:
        """Add the account; its id is known on return."""

    def customer(self, customer_id: int) -> CustomerRecord | None: ...

    def add_customer(self, *, name: str, phone: str = "", address: str = "") -> CustomerRecord:
        """Add the customer; its id is known on return."""

    def meter(self, company_no: str, comm_no: str) -> MeterRecord | None: ...

    def add_meter(self, company_no: str, comm_no: str) -> MeterRecord:
        """Add the meter; its id is known on return."""

    def add_binding(self, new: NewBinding) -> BindingRecord: ...

    def account_of_meter(self, comm_no: str) -> AccountRecord | None:
        """The account the meter is bound to now, else the last one it was bound to."""

    def binding_of_meter(self, meter_id: int) -> BindingRecord | None:
        """The meter's active binding, if it is bound."""

    def active_binding(self, account_id: int) -> BindingRecord | None:
        """The account's active binding, if it has a meter."""

    def meter_by_id(self, meter_id: int) -> MeterRecord | None: ...

    def save(self, record: AccountRecord | BindingRecord) -> None:
        """Keep an account's or a binding's changes in this unit of work."""

    def readings_while_bound(
        self, account_id: int, *, frozen_only: bool, offset: int, limit: int
    ) -> Sequence[ReadingRecord]:
        """The account's readings, newest first: each meter's while it was bound to it."""

    def latest_remain_thousandths(self, company_no: str, comm_no: str) -> int | None:
        """The balance the meter last reported (remain_money, thousandths of a yuan)."""

    def latest_frozen_litres(
        self,
        company_no: str,
        comm_no: str,
        *,
        since: datetime,
        until: datetime,
        basis: VolumeBasis,
    ) -> int | None:
        """The meter's register on `basis` at its latest frozen (daily) reading taken after
        `since` and up to `until` that has that register; None if there is none.

        Real-time readings never count, nor a frozen reading whose `basis` register is
        missing (rating skips it too). Closing and replacing read a meter's last register
        since it was bound to the account: a reading from before (another account's)
        is not this account's.
        """
