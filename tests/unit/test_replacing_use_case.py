"""Replacing an account's meter (service.replacing) on fakes, without a database.

Meter mode: the old meter's tail billed to its credit up to the final register, what the
books say it still held moved back to prepaid and carried onto the new meter by an
`openaccount` holding it, the meter's own last balance recorded beside the ledger's;
a prepay command in flight or a settlement blocks it. System mode: the bindings only.

The same over the database, with the outbox and a scripted platform:
tests/integration/test_replacing.py.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import AccountError
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountCode, HoldAction, TransferKind, TransferStatus
from gasbill.domain.meters import RegisterReading
from gasbill.domain.money import Money, Volume
from gasbill.service import ledger
from gasbill.service.accounts import Conflict, NotFound, Replacement
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from gasbill.service.replacing import Replaced, replace_account_meter
from tests.conftest import ROOT, WORK_SUM_TARIFF
from tests.factories import ZONE_NAME, at
from tests.fakes import (
    FakeAccount,
    FakeBinding,
    FakeMeter,
    FakePrepayState,
    FakeStore,
    FakeUnitOfWork,
)

CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)  # beijing-residential: 2.61 yuan/m³ first
POLICY = CommandPolicy()
OLD, NEW = "12345678901234", "98765432109876"
AT = at(2025, 5, 1)  # the replacement: local midnight, the old meter's final register
NOW = at(2025, 5, 1, 10)
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")


def world(mode: str = "meter", paid: int = 10_000, loaded: int = 5_000) -> FakeStore:
    """Account 7 on meter 3 since April; `paid` fen taken, `loaded` of it confirmed on the
    meter; 1 m³ a day read on 28 and 29 April (frozen at 0, 1 and 2 m³)."""
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode=mode)},
        meters={3: FakeMeter(3, comm_no=OLD)},
        bindings=[FakeBinding(7, 3, at(2025, 4, 1))],
    )
    store.ledger.set_overdraft_allowance(PREPAID, 0)
    if paid:
        ledger.record_payment(
            FakeUnitOfWork(store),
            account_id=7,
            amount_fen=paid,
            channel="counter",
            idempotency_key="p1",
            actor="clerk1",
            at=at(2025, 4, 1, 9),
        )
    if loaded:
        uow = FakeUnitOfWork(store)
        with uow:
            account = uow.accounts.get(7)
            assert account is not None
            top_up = queue_top_up(
                uow, account, loaded, key="t1", actor="clerk1", now=at(2025, 4, 1, 9), policy=POLICY
            )
            resolve_hold_of(uow, top_up, HoldAction.POST, at(2025, 4, 1, 10))
            top_up.status = "done"
            uow.commit()
    store.readings[("1001", OLD)] = [
        RegisterReading(at(2025, 4, 28), 0, 0),
        RegisterReading(at(2025, 4, 29), 1_000, 1_000),
        RegisterReading(at(2025, 4, 30), 2_000, 2_000),
    ]
    return store


def replace(store: FakeStore, final: str = "3", opening: str = "0.5", **extra) -> Replaced:
    uow = FakeUnitOfWork(store)
    done = replace_account_meter(
        uow,
        Replacement(
            extra.pop("account_id", 7), extra.pop("at", AT), Volume(final), NEW, Volume(opening)
        ),
        idempotency_key="r1",
        actor="clerk2",
        now=NOW,
        catalog=extra.pop("catalog", CATALOG),
        policy=POLICY,
    )
    assert uow.committed
    return done


def charged(store: FakeStore) -> dict[date, int]:
    return {d.day: d.posted_fen for d in store.charge_days.values() if d.posted_fen}


def test_meter_mode_the_old_meters_credit_is_settled_and_carried_onto_the_new_meter():
    store = world()
    store.remains[("1001", OLD)] = [
        (at(2025, 4, 30, 6), Money(Decimal("43.00"))),
        (at(2025, 4, 29, 6), Money(Decimal("50.00"))),
    ]

    done = replace(store)

    # the tail to the final register billed: 1 m³ on each of 28, 29 and 30 April at 2.61
    assert charged(store) == {
        date(2025, 4, 28): 261,
        date(2025, 4, 29): 261,
        date(2025, 4, 30): 261,
    }
    # 5,000 loaded less 783 billed is what the books say the old meter held
    assert (done.ledger_credit_fen, done.meter_remain_fen, done.difference_fen) == (
        4_217,
        4_300,
        83,
    )
    credit = done.credit_transfer
    assert credit is not None
    assert (credit.debit_account, credit.credit_account, credit.amount) == (CREDIT, PREPAID, 4_217)
    assert (credit.kind, credit.status, credit.idempotency_key) == (
        TransferKind.ADJUSTMENT,
        TransferStatus.POSTED,
        "replace-credit:r1",
    )
    # the bindings: the old one closed at 3 m³, the new meter (4) bound at 0.5 m³
    old, new = store.bindings
    assert (old.meter_id, old.unbound_at, old.final_litres) == (3, AT, 3_000)
    assert (new.meter_id, new.bound_at, new.opening_litres, new.unbound_at) == (4, AT, 500, None)
    assert store.meters[4].comm_no == NEW
    # the new meter opened with the credit as its charge, held from prepaid
    opening = store.commands[done.opening_command_id or 0]
    assert (opening.ctrl_type, opening.status, opening.meter_id, opening.account_id) == (
        CtrlType.OPEN_ACCOUNT,
        "queued",
        4,
        7,
    )
    assert opening.amount_fen == 4_217
    assert opening.intent is not None
    assert opening.intent.charge.fen == opening.intent.total.fen == 4_217  # type: ignore[attr-defined]
    label = CATALOG.get("beijing-residential").version_at(NOW).label
    assert opening.reason == f"open account A1 ({label})"
    hold = store.ledger.transfer(opening.hold_id or "")
    assert hold is not None
    assert (hold.debit_account, hold.credit_account, hold.amount, hold.status) == (
        PREPAID,
        CREDIT,
        4_217,
        TransferStatus.PENDING,
    )
    assert hold.idempotency_key == "open-hold:replace:r1"
    # prepaid: 5,000 never loaded, plus the credit back, less the credit held again
    assert store.ledger.balance(PREPAID).posted == 9_217
    assert store.ledger.balance(PREPAID).available == 5_000
    assert (store.ledger.balance(CREDIT).posted, store.ledger.balance(CREDIT).pending) == (0, 4_217)
    replaced, settled = [e for e in store.audit if e.action.startswith("meter.replace")]
    assert (replaced.action, settled.action) == ("meter.replace", "meter.replace.settle")
    assert (settled.actor, settled.entity, settled.entity_id, settled.at) == (
        "clerk2",
        "account",
        7,
        NOW,
    )
    assert settled.after == {
        "ledger_credit": "42.17",
        "meter_remain": "43.00",
        "difference": "0.83",
        "credit_transfer": credit.id,
        "openaccount": done.opening_command_id,
    }


def test_meter_mode_an_old_meter_billed_past_what_it_was_loaded_opens_the_new_one_with_nothing():
    store = world(loaded=0)  # nothing ever loaded: the shadow billed 783 below zero

    done = replace(store)

    assert (done.ledger_credit_fen, done.credit_transfer) == (0, None)
    assert (done.meter_remain_fen, done.difference_fen) == (None, None)  # it never reported
    # the negative credit stays where it is, for the auditor
    assert store.ledger.balance(CREDIT).posted == -783
    assert store.ledger.balance(PREPAID).available == 10_000
    opening = store.commands[done.opening_command_id or 0]
    assert (opening.ctrl_type, opening.hold_id, opening.amount_fen) == (
        CtrlType.OPEN_ACCOUNT,
        None,
        None,
    )
    assert opening.intent is not None
    assert opening.intent.charge.fen == 0  # type: ignore[attr-defined]
    (settled,) = [e for e in store.audit if e.action == "meter.replace.settle"]
    assert settled.after == {
        "ledger_credit": "0.00",
        "meter_remain": None,
        "difference": None,
        "credit_transfer": None,
        "openaccount": done.opening_command_id,
    }


def test_meter_mode_a_top_up_in_flight_on_the_old_meter_blocks_the_replacement():
    store = world()
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        queue_top_up(uow, account, 1_000, key="t2", actor="clerk1", now=NOW, policy=POLICY)
        uow.commit()

    with pytest.raises(Conflict, match=r"^remotecharge #2 is still queued"):
        replace(store)

    assert [b.unbound_at for b in store.bindings] == [None]
    assert sorted(store.meters) == [3] and sorted(store.commands) == [1, 2]
    assert store.charge_days == {}


def test_meter_mode_an_old_meter_being_settled_blocks_the_replacement():
    store = world()
    store.prepay[3] = FakePrepayState(3, blocked_by=41)

    with pytest.raises(
        Conflict, match=r"^command #41 is being settled with the meter: wait for it$"
    ):
        replace(store)
    assert [b.unbound_at for b in store.bindings] == [None]


def test_system_mode_only_the_bindings_change():
    store = world("system", loaded=0)

    done = replace(store, final="2.5", opening="0")

    assert (done.billing_mode, done.ledger_credit_fen, done.opening_command_id) == (
        "system",
        None,
        None,
    )
    assert (done.old.final_litres, done.new.opening_litres, done.new.meter_id) == (2_500, 0, 4)
    assert store.bindings[0].unbound_at == AT
    assert store.commands == {} and store.charge_days == {}
    assert store.ledger.balance(PREPAID).available == 10_000
    assert [e.action for e in store.audit if e.action.startswith("meter.")] == ["meter.replace"]


def test_a_replacement_in_the_future_or_of_an_unknown_account_is_refused():
    store = world()
    with pytest.raises(AccountError, match=r"^the replacement cannot be in the future$"):
        replace(store, at=NOW + timedelta(minutes=1))
    with pytest.raises(NotFound, match=r"^no account 99$"):
        replace(store, account_id=99)
    assert [b.unbound_at for b in store.bindings] == [None] and store.charge_days == {}


def test_a_final_register_below_the_old_meters_last_reading_is_refused():
    store = world()  # the old meter read 2 m³ on 30 April
    commands = dict(store.commands)

    with pytest.raises(AccountError, match=r"below the meter's last reading \(2\.000 m³\)"):
        replace(store, final="1.5")
    assert [b.unbound_at for b in store.bindings] == [None]  # nothing kept
    assert store.charge_days == {} and store.commands == commands


@pytest.mark.parametrize("mode", ["meter", "system"])
def test_the_final_register_may_equal_the_last_reading_in_either_mode(mode):
    store = world(mode=mode, loaded=5_000 if mode == "meter" else 0)

    done = replace(store, final="2")

    assert done.old.final_litres == 2_000


def test_a_reading_after_a_backdated_replacement_does_not_bind_its_final_register():
    """Replaced at noon on 29 April: the meter's last reading before it is 1 m³ (the one on
    30 April came after), so 1.5 m³ is a final register it may have had."""
    store = world(mode="system", loaded=0)

    done = replace(store, final="1.5", at=at(2025, 4, 29, 12))

    assert done.old.final_litres == 1_500
    with pytest.raises(AccountError, match=r"\(1\.000 m³\)"):
        replace(world(mode="system", loaded=0), final="0.5", at=at(2025, 4, 29, 12))


@pytest.mark.parametrize(
    ("tariff", "refused", "taken"),
    [("beijing-residential", "1.9", "2"), (WORK_SUM_TARIFF, "2.9", "3")],
)
def test_the_last_reading_is_on_the_tariffs_register_since_the_binding_and_frozen(
    work_sum_catalog, tariff, refused, taken
):
    """On 30 April the old meter read std 2 m³, work 3 m³; a real-time reading after it and
    a frozen one from before the binding (a previous account's, higher) bind nothing."""
    store = world(mode="system", loaded=0)
    store.accounts[7].tariff_id = tariff
    store.readings[("1001", OLD)] = [
        RegisterReading(at(2025, 3, 20), 9_000, 9_000),  # before the binding on 1 April
        RegisterReading(at(2025, 4, 28), 0, 0),
        RegisterReading(at(2025, 4, 30), 2_000, 3_000),
        RegisterReading(at(2025, 4, 30, 8), 2_500, 3_500, real_time=True),
    ]

    with pytest.raises(AccountError, match=r"below the meter's last reading"):
        replace(store, final=refused, catalog=work_sum_catalog)
    done = replace(store, final=taken, catalog=work_sum_catalog)

    assert done.old.final_litres == Volume(taken).litres
