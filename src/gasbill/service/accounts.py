"""Customers, accounts and meters: open, change, bind, replace, close."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from gasbill.domain.accounts import (
    AccountError,
    BillingMode,
    check_comm_no,
    check_company_no,
    check_replacement,
)
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Volume
from gasbill.service.ports import (
    AccountRecord,
    BindingRecord,
    CustomerRecord,
    DecidedAccount,
    NewAccountRow,
    NewBinding,
    TariffBook,
    UnitOfWork,
)


class NotFound(AccountError):
    """The customer, account or meter does not exist."""


class Conflict(AccountError):
    """The request clashes with what is recorded (a number in use, a meter bound elsewhere)."""


@dataclass(frozen=True, slots=True)
class NewAccount:
    customer_id: int
    number: str
    company_no: str
    billing_mode: BillingMode
    tariff_id: str
    opened_on: date
    meter_comm_no: str
    opening_register: Volume
    bound_at: datetime
    persons: int = 1
    warning_fen: int = 2000
    cutoff_fen: int = 0
    reopen_fen: int = 0


def snapshot(row: Any) -> dict[str, Any]:
    """A row as plain JSON-able values, for the audit log."""
    return dict(row.model_dump(mode="json"))


def create_customer(
    uow: UnitOfWork, *, name: str, phone: str = "", address: str = "", actor: str
) -> CustomerRecord:
    with uow:
        customer = uow.accounts.add_customer(name=name, phone=phone, address=address)
        uow.audit.record(
            actor=actor,
            action="customer.create",
            entity="customer",
            entity_id=customer.id,
            after=snapshot(customer),
        )
        uow.commit()
        return customer


def open_account(
    uow: UnitOfWork, new: NewAccount, *, catalog: TariffBook, actor: str
) -> DecidedAccount:
    """An account with its ledger accounts and its first meter."""
    with uow:
        account = open_within(uow, new, catalog=catalog, actor=actor)
        uow.commit()
        return account


def open_within(
    uow: UnitOfWork, new: NewAccount, *, catalog: TariffBook, actor: str
) -> DecidedAccount:
    """`open_account` inside the caller's unit of work, which commits."""
    check_company_no(new.company_no)
    check_comm_no(new.meter_comm_no)
    tariff = catalog.get(new.tariff_id)
    if new.billing_mode is BillingMode.METER:
        tariff.check_meter_encodable(new.persons)
    if new.cutoff_fen > 0 or new.reopen_fen < new.cutoff_fen:
        raise AccountError("the cut-off must be ≤ 0 and the reopen threshold ≥ the cut-off")
    if uow.accounts.customer(new.customer_id) is None:
        raise NotFound(f"no customer {new.customer_id}")
    if uow.accounts.by_number(new.number) is not None:
        raise Conflict(f"account number {new.number!r} is already in use")
    account = uow.accounts.add(
        NewAccountRow(
            number=new.number,
            customer_id=new.customer_id,
            company_no=new.company_no,
            billing_mode=str(new.billing_mode),
            tariff_id=tariff.id,
            persons=new.persons,
            opened_on=new.opened_on,
            warning_fen=new.warning_fen,
            cutoff_fen=new.cutoff_fen,
            reopen_fen=new.reopen_fen,
        )
    )
    assert account.id is not None
    key = str(account.id)
    uow.ledger.ensure_account(AccountCode.prepaid(key), account_id=account.id, allowance=0)
    uow.ledger.ensure_account(AccountCode.meter_credit(key), account_id=account.id)
    binding = _bind(
        uow,
        account,
        new.company_no,
        new.meter_comm_no,
        new.bound_at,
        new.opening_register.litres,
        reason="account opened",
    )
    uow.audit.record(
        actor=actor,
        action="account.open",
        entity="account",
        entity_id=account.id,
        after={
            **snapshot(account),
            "meter": new.meter_comm_no,
            "opening_litres": binding.opening_litres,
        },
    )
    return account


def _bind(
    uow: UnitOfWork,
    account: AccountRecord,
    company_no: str,
    comm_no: str,
    at: datetime,
    opening_litres: int,
    *,
    reason: str,
) -> BindingRecord:
    meter = uow.accounts.meter(company_no, comm_no)
    if meter is None:
        meter = uow.accounts.add_meter(company_no, comm_no)
    assert meter.id is not None
    assert account.id is not None
    elsewhere = uow.accounts.binding_of_meter(meter.id)
    if elsewhere is not None:
        raise Conflict(f"meter {comm_no} is bound to account {elsewhere.account_id}")
    return uow.accounts.add_binding(
        NewBinding(
            account_id=account.id,
            meter_id=meter.id,
            bound_at=at,
            opening_litres=opening_litres,
            reason=reason,
        )
    )


@dataclass(frozen=True, slots=True)
class Replacement:
    account_id: int
    at: datetime
    old_final_register: Volume
    new_comm_no: str
    new_opening_register: Volume
    reason: str = "meter replaced"


def replace_meter(
    uow: UnitOfWork, replacement: Replacement, *, actor: str, last_billed_litres: int | None = None
) -> BindingRecord:
    """Close the old meter at its final reading and bind the new one at its opening reading."""
    with uow:
        _, new = replace_within(
            uow, replacement, actor=actor, last_billed_litres=last_billed_litres
        )
        uow.commit()
        return new


def replace_within(
    uow: UnitOfWork,
    replacement: Replacement,
    *,
    actor: str,
    last_billed_litres: int | None = None,
) -> tuple[BindingRecord, BindingRecord]:
    """`replace_meter` inside the caller's unit of work, which commits: (old, new) bindings.

    Billing closes the old register at its final reading and opens the new
    one at its opening reading.
    """
    check_comm_no(replacement.new_comm_no)
    account = uow.accounts.get(replacement.account_id, lock=True)
    if account is None:
        raise NotFound(f"no account {replacement.account_id}")
    if account.status != "active":
        raise Conflict(f"account {account.number} is {account.status}")
    old = uow.accounts.active_binding(replacement.account_id)
    if old is None:
        raise Conflict(f"account {account.number} has no meter to replace")
    if replacement.at <= old.bound_at:
        raise AccountError("the replacement must come after the old meter was bound")
    if replacement.old_final_register.litres < old.opening_litres:
        raise AccountError(
            f"the final register {replacement.old_final_register.fixed()} m³ is below the "
            f"old meter's opening {Volume.of_litres(old.opening_litres).fixed()} m³"
        )
    check_replacement(
        old_final_litres=replacement.old_final_register.litres,
        last_billed_litres=last_billed_litres,
        new_opening_litres=replacement.new_opening_register.litres,
    )
    before = snapshot(old)
    old.unbound_at = replacement.at
    old.final_litres = replacement.old_final_register.litres
    uow.accounts.save(old)
    new = _bind(
        uow,
        account,
        account.company_no,
        replacement.new_comm_no,
        replacement.at,
        replacement.new_opening_register.litres,
        reason=replacement.reason,
    )
    uow.audit.record(
        actor=actor,
        action="meter.replace",
        entity="account",
        entity_id=account.id,
        before=before,
        after={"closed": snapshot(old), "opened": snapshot(new)},
    )
    return old, new


ADJUSTABLE = ("persons", "warning_fen", "cutoff_fen", "reopen_fen", "tariff_id")

STATUS_NOT_ADJUSTABLE = (
    "the status is not changed by an update: an account is closed only by closing it "
    "(final reading, credit paid back, valve closed), and a closed account is not reopened"
)


def update_account(
    uow: UnitOfWork,
    account_id: int,
    changes: dict[str, Any],
    *,
    catalog: TariffBook,
    actor: str,
) -> DecidedAccount:
    """Change an active account's household size, thresholds or tariff; audited.

    The status is none of these: closing (`service.closing`) settles the account
    with its final reading, its credit paid back and its valve closed, and a
    closed account, settled, is changed no more. What is refused keeps nothing.
    """
    if "status" in changes:
        raise AccountError(STATUS_NOT_ADJUSTABLE)
    unknown = set(changes) - set(ADJUSTABLE)
    if unknown:
        raise AccountError(f"cannot change {', '.join(sorted(unknown))}")
    with uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            raise NotFound(f"no account {account_id}")
        if account.status != "active":
            raise Conflict(
                f"account {account.number} is {account.status}: its closure settled it, so its "
                "household size, thresholds and tariff are no longer changed"
            )
        before = snapshot(account)
        if "tariff_id" in changes:
            tariff = catalog.get(changes["tariff_id"])
            if account.billing_mode == BillingMode.METER:
                tariff.check_meter_encodable(changes.get("persons", account.persons))
        for field, value in changes.items():
            setattr(account, field, value)
        if account.cutoff_fen > 0 or account.reopen_fen < account.cutoff_fen:
            raise AccountError("the cut-off must be ≤ 0 and the reopen threshold ≥ the cut-off")
        uow.accounts.save(account)
        uow.audit.record(
            actor=actor,
            action="account.update",
            entity="account",
            entity_id=account.id,
            before=before,
            after=snapshot(account),
        )
        uow.commit()
        return account
