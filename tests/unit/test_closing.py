"""Closing an account (service.closing) on a fake unit of work: the meter unbound at its
final register, what the account still holds paid back, the valve closed; and what stops
a closing before anything is written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.domain.accounts import AccountError
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import (
    AccountCode,
    HoldAction,
    Transfer,
    TransferKind,
    TransferStatus,
)
from gasbill.domain.meters import RegisterReading
from gasbill.domain.money import Volume
from gasbill.service import billing, ledger
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.closing import close_account
from gasbill.service.commands.followups import resolve_hold_of
from gasbill.service.commands.queue import CommandPolicy, queue_top_up
from tests.conftest import ROOT, WORK_SUM_TARIFF
from tests.factories import ZONE_NAME
from tests.fakes import FakeAccount, FakeBinding, FakeMeter, FakeStore, FakeUnitOfWork

AT = datetime(2025, 5, 1, 9, tzinfo=UTC)
BOUND = AT - timedelta(days=90)
METER = ("1001", "12345678901")
CATALOG = TariffCatalog(ROOT / "tariffs", ZONE_NAME)  # beijing-residential: std_sum
POLICY = CommandPolicy()
PREPAID, CREDIT = AccountCode.prepaid("7"), AccountCode.meter_credit("7")


def world(
    mode: str = "system", paid: int = 3_000, tariff: str = "beijing-residential"
) -> FakeStore:
    store = FakeStore(
        accounts={7: FakeAccount(7, billing_mode=mode, tariff_id=tariff)},
        meters={3: FakeMeter(3)},
        bindings=[FakeBinding(7, 3, BOUND, opening_litres=100_000)],
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
            at=AT - timedelta(days=1),
        )
    return store


def close(
    store: FakeStore,
    final: Volume | None = None,
    account_id: int = 7,
    catalog: TariffCatalog = CATALOG,
):
    uow = FakeUnitOfWork(store)
    closure = close_account(
        uow,
        account_id,
        final_register=final,
        channel="counter",
        idempotency_key="c1",
        actor="clerk1",
        now=AT,
        catalog=catalog,
        policy=POLICY,
    )
    return closure, uow


def test_closing_unbinds_bills_pays_back_prepaid_closes_the_valve_and_is_audited():
    """0.5 m³ since the opening (100 m³), at 2.61 yuan: 1.31 billed, 28.69 paid back."""
    store = world()
    closure, uow = close(store, Volume.of_litres(100_500))

    assert uow.committed
    assert store.accounts[7].status == "closed"
    binding = store.bindings[0]
    assert (binding.unbound_at, binding.final_litres) == (AT, 100_500)
    assert (closure.final_register, closure.billed_fen) == ("100.500", 131)
    assert closure.refunded_fen == 3_000 - 131
    assert store.ledger.balance(PREPAID).available == 0
    valve = store.commands[closure.valve_command_id or 0]
    assert (valve.ctrl_type, valve.meter_id, valve.account_id) == (CtrlType.SET_VALVE_OFF, 3, 7)
    (entry,) = [e for e in store.audit if e.action == "account.close"]
    assert entry.after["refunds"] == [t.id for t in closure.refunds]
    assert entry.after["billed_fen"] == 131


@pytest.mark.parametrize(
    ("tariff", "before", "tail"),
    [("beijing-residential", 783, 522), (WORK_SUM_TARIFF, 1_044, 261)],
)
def test_the_tail_to_the_final_register_is_billed_before_the_credit_is_paid_back(
    work_sum_catalog, tariff, before, tail
):
    """A reading the day before (std 103 m³, work 104 m³) billed; the clerk reads 105 m³ off
    the meter. On std, 3 m³ then 2 m³; on work, 4 m³ then 1 m³: 5 m³ in all at 2.61 yuan,
    and 30.00 - 13.05 = 16.95 paid back, not the 30.00 less what was billed before."""
    store = world(tariff=tariff)
    store.readings[METER] = [RegisterReading(AT - timedelta(days=1), 103_000, 104_000)]
    billing.bill_accounts(
        FakeUnitOfWork(store), [7], catalog=work_sum_catalog, now=AT - timedelta(hours=12)
    )
    assert store.ledger.balance(PREPAID).available == 3_000 - before

    closure, _ = close(store, Volume.of_litres(105_000), catalog=work_sum_catalog)

    assert (closure.billed_fen, closure.refunded_fen) == (tail, 3_000 - 1_305)
    assert sum(d.posted_fen for d in store.charge_days.values()) == 1_305
    assert store.ledger.balance(PREPAID).available == 0


def test_readings_not_billed_yet_are_billed_before_the_credit_is_paid_back(work_sum_catalog):
    """The reading's work register (104 m³) is the final one: 4 m³, 10.44 yuan."""
    store = world(tariff=WORK_SUM_TARIFF)
    store.readings[METER] = [RegisterReading(AT - timedelta(days=1), 103_000, 104_000)]

    closure, _ = close(store, catalog=work_sum_catalog)

    assert closure.final_register == "104.000"
    assert (closure.billed_fen, closure.refunded_fen) == (1_044, 3_000 - 1_044)


def history(store: FakeStore) -> None:
    """Frozen readings of the meter (std, work registers apart): one of the account before
    it on the meter, two since the binding; a real-time reading after them, and a frozen
    one after the closing, neither of which is this account's final register."""
    store.readings[METER] = [
        RegisterReading(BOUND - timedelta(days=1), 99_000, 99_500),  # the previous account's
        RegisterReading(AT - timedelta(days=2), 180_000, 190_000),
        RegisterReading(AT - timedelta(days=1), 181_250, 191_500),
        RegisterReading(AT - timedelta(hours=1), 182_000, 192_700, real_time=True),
        RegisterReading(AT + timedelta(days=1), 183_000, 194_000),
    ]


def test_without_a_final_register_the_latest_frozen_reading_is_the_final_one():
    store = world(paid=0)
    history(store)

    closure, _ = close(store)

    assert closure.final_register == "181.250"
    assert store.bindings[0].final_litres == 181_250
    assert closure.refunds == ()


def test_on_a_work_sum_tariff_the_final_register_is_the_latest_frozen_work_register(
    work_sum_catalog,
):
    store = world(paid=0, tariff=WORK_SUM_TARIFF)
    history(store)

    closure, _ = close(store, catalog=work_sum_catalog)

    assert closure.final_register == "191.500"
    assert store.bindings[0].final_litres == 191_500


def test_a_frozen_reading_without_the_tariffs_register_is_passed_over(work_sum_catalog):
    store = world(paid=0, tariff=WORK_SUM_TARIFF)
    history(store)
    store.readings[METER].append(RegisterReading(AT - timedelta(hours=9), 181_900, None))

    closure, _ = close(store, catalog=work_sum_catalog)

    assert closure.final_register == "191.500"


def test_a_reading_from_before_the_binding_is_not_the_final_register():
    """The meter's only frozen reading is the previous account's, below this one's opening:
    there is no final register to take, and the closing goes through without one."""
    store = world(paid=0)
    store.readings[METER] = [RegisterReading(BOUND - timedelta(days=1), 99_000, 99_500)]

    closure, _ = close(store)

    assert closure.final_register is None
    assert (store.bindings[0].unbound_at, store.bindings[0].final_litres) == (AT, None)
    assert store.accounts[7].status == "closed"


def test_a_meter_mode_account_is_also_paid_back_what_its_meter_credit_holds():
    store = world("meter", paid=0)
    store.ledger.set_overdraft_allowance(CREDIT, 0)
    ledger.record_payment(
        FakeUnitOfWork(store),
        account_id=7,
        amount_fen=2_000,
        channel="counter",
        idempotency_key="p2",
        actor="clerk1",
        at=AT,
    )
    # 1,200 fen moved to the meter and confirmed (the hold posted)
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        top_up = queue_top_up(uow, account, 1_200, key="t", actor="c", now=AT, policy=POLICY)
        resolve_hold_of(uow, top_up, HoldAction.POST, AT)
        top_up.status = "done"
        uow.commit()

    # 2 m³ on the meter since the opening: its shadow bills 5.22 yuan of the 12.00 loaded
    closure, _ = close(store, Volume.of_litres(102_000))

    assert closure.billed_fen == 522
    by_source = {t.debit_account.kind: t.amount for t in closure.refunds}
    assert by_source == {"prepaid": 800, "meter_credit": 1_200 - 522}
    assert closure.refunded_fen == 2_000 - 522


def test_a_final_register_below_the_meters_opening_is_refused_and_nothing_is_kept():
    store = world()
    with pytest.raises(AccountError, match="below the opening"):
        close(store, Volume.of_litres(99_999))
    assert store.accounts[7].status == "active" and store.bindings[0].unbound_at is None
    assert store.commands == {}


@pytest.mark.parametrize(
    ("tariff", "last"), [("beijing-residential", 181_250), (WORK_SUM_TARIFF, 191_500)]
)
def test_a_final_register_below_the_meters_last_reading_on_the_tariffs_basis_is_refused(
    work_sum_catalog, tariff, last
):
    """Below the last frozen reading since the binding, on the tariff's register, is
    refused; that reading itself is taken (the real-time one after it binds nothing)."""
    store = world(tariff=tariff)
    history(store)
    below = Volume.of_litres(last - 1)
    message = f"below the meter's last reading \\({Volume.of_litres(last).fixed()} m³\\)"
    with pytest.raises(AccountError, match=message):
        close(store, below, catalog=work_sum_catalog)
    assert store.accounts[7].status == "active" and store.bindings[0].unbound_at is None

    close(store, Volume.of_litres(last), catalog=work_sum_catalog)

    assert store.bindings[0].final_litres == last


def test_a_top_up_still_in_flight_stops_the_closing():
    store = world("meter")
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        queue_top_up(uow, account, 1_000, key="t", actor="c", now=AT, policy=POLICY)
        uow.commit()

    with pytest.raises(Conflict, match="still queued"):
        close(store, Volume.of_litres(120_000))
    assert store.accounts[7].status == "active"


def test_a_meter_being_settled_stops_the_closing():
    store = world("meter")
    uow = FakeUnitOfWork(store)
    with uow:
        prepay = uow.commands.prepay_state(3)
        prepay.blocked_by = 41
        uow.commands.save_prepay(prepay)
        uow.commit()

    with pytest.raises(Conflict, match="#41 is being settled"):
        close(store, Volume.of_litres(120_000))


def test_a_closed_or_unknown_account_cannot_be_closed():
    store = world()
    close(store, Volume.of_litres(120_000))
    with pytest.raises(Conflict, match="already closed"):
        close(store, Volume.of_litres(120_000))
    with pytest.raises(NotFound):
        close(store, account_id=99)


# -- the final bill netted (meter mode): what one ledger account holds pays what the other owes


def _loaded(store: FakeStore, fen: int) -> None:
    """`fen` of prepaid moved to the meter and confirmed (the hold posted)."""
    uow = FakeUnitOfWork(store)
    with uow:
        account = uow.accounts.get(7)
        assert account is not None
        top_up = queue_top_up(uow, account, fen, key="t", actor="c", now=AT, policy=POLICY)
        resolve_hold_of(uow, top_up, HoldAction.POST, AT)
        top_up.status = "done"
        uow.commit()


def _true_up_debt(store: FakeStore, fen: int) -> None:
    """A true-up charged to prepaid past what it held."""
    store.ledger.apply(
        Transfer(
            id="trueup",
            idempotency_key="true-up:x",
            debit_account=PREPAID,
            credit_account=AccountCode.revenue(),
            amount=fen,
            kind=TransferKind.CHARGE,
            status=TransferStatus.POSTED,
            effective_at=AT - timedelta(hours=1),
            recorded_at=AT - timedelta(hours=1),
            reason="true-up",
            actor="system",
        ),
        enforce_limits=False,
    )


def _netting_audited(store: FakeStore, closure) -> dict:
    (entry,) = [e for e in store.audit if e.action == "account.close"]
    assert entry.after["netting"] == (closure.netting.id if closure.netting else None)
    assert entry.after["netted_fen"] == closure.netted_fen
    assert entry.after["owed_fen"] == closure.owed_fen
    return entry.after


def test_prepaid_pays_the_meters_tail_first_and_only_the_rest_is_paid_back():
    """30.00 paid, nothing loaded on the meter; 3.67 m³ since the opening at 2.61 yuan:
    9.58 billed to meter_credit (-9.58). Before: 30.00 refunded and 9.58 owed at once.
    Netted: 9.58 moved prepaid -> meter_credit, 20.42 paid back, nothing owed."""
    store = world("meter", paid=3_000)

    closure, _ = close(store, Volume.of_litres(103_670))

    assert closure.billed_fen == 958
    assert closure.netting is not None
    assert (closure.netting.debit_account, closure.netting.credit_account) == (PREPAID, CREDIT)
    assert (closure.netting.kind, closure.netting.amount) == (TransferKind.ADJUSTMENT, 958)
    assert closure.netting.idempotency_key == "close-net:c1"
    assert {t.debit_account.kind: t.amount for t in closure.refunds} == {"prepaid": 2_042}
    assert (closure.refunded_fen, closure.owed_fen) == (2_042, 0)
    assert store.ledger.balance(PREPAID).available == 0
    assert store.ledger.balance(CREDIT).available == 0
    after = _netting_audited(store, closure)
    assert after["netted_fen"] == 958


def test_prepaid_below_the_meters_tail_is_all_moved_and_the_rest_stays_owed():
    """5.00 paid; 9.58 billed to meter_credit: 5.00 moved, nothing paid back, 4.58 owed."""
    store = world("meter", paid=500)

    closure, _ = close(store, Volume.of_litres(103_670))

    assert closure.netting is not None and closure.netting.amount == 500
    assert (closure.refunds, closure.refunded_fen, closure.owed_fen) == ((), 0, 458)
    assert store.ledger.balance(PREPAID).available == 0
    assert store.ledger.balance(CREDIT).available == -458
    _netting_audited(store, closure)


def test_the_meters_credit_pays_what_prepaid_owes_the_other_way():
    """20.00 paid, 12.00 loaded on the meter, then a true-up of 10.00 on prepaid: -2.00.
    2 m³ since the opening: 5.22 billed of the meter's 12.00, 6.78 left there. Netted:
    2.00 moved meter_credit -> prepaid, 4.78 paid back from meter_credit, nothing owed."""
    store = world("meter", paid=2_000)
    store.ledger.set_overdraft_allowance(CREDIT, 0)
    _loaded(store, 1_200)
    _true_up_debt(store, 1_000)
    assert store.ledger.balance(PREPAID).available == -200

    closure, _ = close(store, Volume.of_litres(102_000))

    assert closure.billed_fen == 522
    assert closure.netting is not None
    assert (closure.netting.debit_account, closure.netting.credit_account) == (CREDIT, PREPAID)
    assert closure.netting.amount == 200
    assert {t.debit_account.kind: t.amount for t in closure.refunds} == {"meter_credit": 478}
    assert (closure.refunded_fen, closure.owed_fen) == (478, 0)
    assert store.ledger.balance(PREPAID).available == 0
    assert store.ledger.balance(CREDIT).available == 0
    _netting_audited(store, closure)


def test_nothing_is_netted_when_neither_owes():
    store = world("meter", paid=3_000)

    closure, _ = close(store, Volume.of_litres(100_000))

    assert (closure.netting, closure.netted_fen, closure.refunded_fen) == (None, 0, 3_000)
    assert _netting_audited(store, closure)["netting"] is None


def test_a_system_mode_closing_nets_nothing():
    """Only prepaid: a balance below zero stays owed, as before."""
    store = world(paid=100)

    closure, _ = close(store, Volume.of_litres(100_500))

    assert (closure.netting, closure.refunds, closure.owed_fen) == (None, (), 31)
    assert store.ledger.balance(PREPAID).available == -31


def test_a_replay_of_the_closing_changes_nothing():
    store = world("meter", paid=3_000)
    first, _ = close(store, Volume.of_litres(103_670))
    before = (store.ledger.transfers, list(store.audit), dict(store.commands))

    with pytest.raises(Conflict, match="already closed"):
        close(store, Volume.of_litres(103_670))

    assert (store.ledger.transfers, list(store.audit), dict(store.commands)) == before
    assert first.netting is not None
    assert store.ledger.transfer_by_key("close-net:c1") == first.netting
