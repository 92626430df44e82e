"""Customers and accounts (service.accounts, service.opening.open_with_payment) on fakes,
without a database: an account opened with its meter, ledger accounts and first payment
(and in meter mode its `openaccount`), what is refused and leaves nothing behind, an
account's settings changed, a meter replaced.

The same rules against the database (its unique keys, a meter bound at most once) are in
tests/integration/test_accounts.py.
"""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import AccountError, BillingMode
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Volume
from gasbill.service.accounts import (
    Conflict,
    NewAccount,
    NotFound,
    Replacement,
    create_customer,
    open_account,
    replace_meter,
    update_account,
)
from gasbill.service.closing import close_account
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.opening import open_with_payment
from tests.conftest import ROOT
from tests.fakes import FakeStore, FakeUnitOfWork

CATALOG = TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
METER = "12345678901234"
NOW = datetime(2025, 1, 1, 2, tzinfo=UTC)


def new_account(owner: int, **overrides: object) -> NewAccount:
    fields: dict[str, object] = {
        "customer_id": owner,
        "number": "A0001",
        "company_no": "1001",
        "billing_mode": BillingMode.SYSTEM,
        "tariff_id": "beijing-residential",
        "opened_on": date(2025, 1, 1),
        "meter_comm_no": METER,
        "opening_register": Volume("12.5"),
        "bound_at": datetime(2024, 12, 31, 16, tzinfo=UTC),
        "persons": 3,
    }
    fields.update(overrides)
    return NewAccount(**fields)  # type: ignore[arg-type]


def with_customer() -> tuple[FakeStore, int]:
    store = FakeStore()
    customer = create_customer(FakeUnitOfWork(store), name="张三", phone="138", actor="clerk")
    return store, customer.id


def test_an_account_opens_with_its_meter_bound_at_its_register_and_its_ledger_accounts():
    store, customer_id = with_customer()
    uow = FakeUnitOfWork(store)

    account = open_account(uow, new_account(customer_id), catalog=CATALOG, actor="clerk")

    assert uow.committed
    assert (account.number, account.customer_id, account.persons) == ("A0001", customer_id, 3)
    (meter,) = store.meters.values()
    (binding,) = store.bindings
    assert (meter.company_no, meter.comm_no) == ("1001", METER)
    assert (binding.account_id, binding.meter_id, binding.opening_litres) == (
        account.id,
        meter.id,
        12_500,
    )
    assert store.ledger.overdraft_allowance(AccountCode.prepaid(str(account.id))) == 0
    assert [(e.action, e.actor) for e in store.audit] == [
        ("customer.create", "clerk"),
        ("account.open", "clerk"),
    ]
    assert store.audit[-1].after["meter"] == METER  # type: ignore[index]


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"number": "TAKEN"}, Conflict),
        ({"customer_id": 99}, NotFound),
        ({"meter_comm_no": "123"}, AccountError),
        ({"cutoff_fen": 100}, AccountError),
        ({"meter_comm_no": "99999999999999"}, Conflict),  # bound to the first account
    ],
)
def test_a_refused_opening_leaves_nothing_behind(change, refusal):
    store, customer_id = with_customer()
    first = new_account(customer_id, number="TAKEN", meter_comm_no="99999999999999")
    open_account(FakeUnitOfWork(store), first, catalog=CATALOG, actor="clerk")
    before = (dict(store.accounts), list(store.bindings), dict(store.meters), len(store.audit))

    with pytest.raises(refusal):
        open_account(
            FakeUnitOfWork(store),
            new_account(customer_id, **change),
            catalog=CATALOG,
            actor="clerk",
        )

    after = (dict(store.accounts), list(store.bindings), dict(store.meters), len(store.audit))
    assert after == before


def test_a_first_payment_is_posted_with_the_opening_and_meter_mode_queues_openaccount():
    store, customer_id = with_customer()
    system = open_with_payment(
        FakeUnitOfWork(store),
        new_account(customer_id),
        initial_fen=10_000,
        channel="cash",
        idempotency_key="open-A0001",
        actor="clerk",
        now=NOW,
        catalog=CATALOG,
        policy=CommandPolicy(),
    )
    meter = open_with_payment(
        FakeUnitOfWork(store),
        new_account(
            customer_id,
            number="A0002",
            meter_comm_no="22345678901234",
            billing_mode=BillingMode.METER,
        ),
        initial_fen=5_000,
        channel="cash",
        idempotency_key="open-A0002",
        actor="clerk",
        now=NOW,
        catalog=CATALOG,
        policy=CommandPolicy(),
    )

    assert system.command_id is None and system.payment is not None
    assert store.ledger.balance(AccountCode.prepaid(str(system.account.id))).posted == 10_000
    assert meter.command_id is not None
    command = store.commands[meter.command_id]
    assert (command.ctrl_type, command.account_id) == (str(CtrlType.OPEN_ACCOUNT), meter.account.id)


def test_an_accounts_settings_change_within_their_rules_and_are_audited():
    store, customer_id = with_customer()
    account = open_account(
        FakeUnitOfWork(store), new_account(customer_id), catalog=CATALOG, actor="clerk"
    )
    assert account.id is not None

    changed = update_account(
        FakeUnitOfWork(store), account.id, {"persons": 5}, catalog=CATALOG, actor="admin"
    )

    assert changed.persons == store.accounts[account.id].persons == 5
    entry = store.audit[-1]
    assert (entry.action, entry.before["persons"], entry.after["persons"]) == (  # type: ignore[index]
        "account.update",
        3,
        5,
    )
    for refused in ({"number": "B"}, {"cutoff_fen": 1}, {"status": "frozen"}):
        with pytest.raises(AccountError):
            update_account(
                FakeUnitOfWork(store), account.id, refused, catalog=CATALOG, actor="admin"
            )
    assert store.accounts[account.id].persons == 5 and len(store.audit) == 3


def kept(store: FakeStore) -> tuple[object, ...]:
    """What an update could write: the accounts, their meters, the audit log, the commands."""
    return copy.deepcopy((store.accounts, store.bindings, store.audit, store.commands))


def opened(store: FakeStore, customer_id: int) -> int:
    account = open_account(
        FakeUnitOfWork(store), new_account(customer_id), catalog=CATALOG, actor="clerk"
    )
    assert account.id is not None
    return account.id


STATUS_CHANGES: list[dict[str, Any]] = [
    {"status": "closed"},  # would skip the closure: no final reading, credit kept, valve open
    {"status": "active"},  # a no-op here; on a closed account, a reopening without a meter
    {"status": "frozen"},
    {"status": None},
    {"status": "closed", "persons": 4},  # refused whole: the persons are not kept either
]


@pytest.mark.parametrize("changes", STATUS_CHANGES)
def test_an_update_naming_the_status_is_refused_pointing_to_the_closure_and_keeps_nothing(
    changes: dict[str, Any],
):
    store, customer_id = with_customer()
    account_id = opened(store, customer_id)
    before = kept(store)
    uow = FakeUnitOfWork(store)

    with pytest.raises(AccountError) as refused:
        update_account(uow, account_id, changes, catalog=CATALOG, actor="clerk")

    assert type(refused.value) is AccountError  # a bad request (422), not a conflict
    assert str(refused.value) == (
        "the status is not changed by an update: an account is closed only by closing it "
        "(final reading, credit paid back, valve closed), and a closed account is not reopened"
    )
    assert not uow.committed and uow.commits == 0
    assert kept(store) == before
    assert store.accounts[account_id].status == "active"


def test_a_closed_account_refuses_every_update_and_is_not_reopened():
    store, customer_id = with_customer()
    account_id = opened(store, customer_id)
    close_account(
        FakeUnitOfWork(store),
        account_id,
        final_register=Volume("20"),
        channel="cash",
        idempotency_key="close-1",
        actor="clerk",
        now=NOW,
        catalog=CATALOG,
        policy=CommandPolicy(),
    )
    assert store.accounts[account_id].status == "closed"
    before = kept(store)
    refusals: list[tuple[dict[str, Any], type[AccountError], str]] = [
        ({"persons": 5}, Conflict, "account A0001 is closed: its closure settled it"),
        ({"tariff_id": "shanghai-residential"}, Conflict, "account A0001 is closed"),
        ({"tariff_id": "no-such-tariff"}, Conflict, "account A0001 is closed"),
        ({"warning_fen": 0}, Conflict, "account A0001 is closed"),
        ({"cutoff_fen": -500, "reopen_fen": 0}, Conflict, "account A0001 is closed"),
        ({}, Conflict, "account A0001 is closed"),
        ({"status": "active"}, AccountError, "a closed account is not reopened"),
        ({"status": "active", "persons": 5}, AccountError, "a closed account is not reopened"),
        ({"number": "B"}, AccountError, "cannot change number"),
    ]

    for changes, error, message in refusals:
        uow = FakeUnitOfWork(store)
        with pytest.raises(AccountError, match=message) as refused:
            update_account(uow, account_id, changes, catalog=CATALOG, actor="clerk")
        assert type(refused.value) is error, changes
        assert not uow.committed, changes

    assert kept(store) == before
    assert store.accounts[account_id].status == "closed"
    assert all(b.unbound_at is not None for b in store.bindings)  # still no meter bound
    assert [e.action for e in store.audit].count("account.update") == 0


def test_a_replaced_meter_is_closed_at_its_final_register_and_the_new_one_bound():
    store, customer_id = with_customer()
    account = open_account(
        FakeUnitOfWork(store), new_account(customer_id), catalog=CATALOG, actor="clerk"
    )
    assert account.id is not None
    at = datetime(2025, 3, 5, 2, tzinfo=UTC)

    new = replace_meter(
        FakeUnitOfWork(store),
        Replacement(account.id, at, Volume("345"), "98765432109876", Volume("0.004")),
        actor="clerk",
        last_billed_litres=340_000,
    )

    old = store.bindings[0]
    assert (old.unbound_at, old.final_litres) == (at, 345_000)
    assert (new.bound_at, new.opening_litres, new.unbound_at) == (at, 4, None)
    assert store.audit[-1].action == "meter.replace"
    with pytest.raises(AccountError, match="below the meter's last reading"):
        replace_meter(
            FakeUnitOfWork(store),
            Replacement(
                account.id, datetime(2025, 4, 1, tzinfo=UTC), Volume("1"), "1" * 14, Volume("0")
            ),
            actor="clerk",
            last_billed_litres=5_000,
        )
