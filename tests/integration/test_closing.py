"""Closing an account over the database: the final register taken, when the clerk gives
none, from the meter's latest frozen reading since it was bound to the account, on the
tariff's volume basis; a closed account paying off what its closing left owing. On SQLite
and PostgreSQL.

The same on fakes, with what stops a closing: tests/unit/test_closing.py.
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime, timedelta

import pytest

from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Volume
from gasbill.service import ledger
from gasbill.service.accounts import Conflict
from gasbill.service.billing import bill_accounts
from gasbill.service.closing import Closure, close_account
from gasbill.service.commands.actions import cancel_command
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.payments import PaymentOutcome, take_payment
from tests.conftest import WORK_SUM_TARIFF
from tests.factories import ZONE
from tests.integration.billing_helpers import COMPANY, make_account, midnight

pytestmark = pytest.mark.db

METER = "12345678901234"
POLICY = CommandPolicy()
NOW = datetime(2025, 1, 4, 10, tzinfo=ZONE)  # the closing


def store(uow, *readings: tuple[datetime, int, int, int]) -> None:
    """Readings of METER: (time, data type, std_sum litres, work_sum litres)."""
    with uow:
        for at, data_type, std, work in readings:
            uow.session.add(
                MeterReading(
                    company_no=COMPANY,
                    meter_comm_no=METER,
                    data_type=data_type,
                    acquisition_time=at,
                    data_guid=os.urandom(16),
                    std_sum=std,
                    work_sum=work,
                )
            )
        uow.commit()


def close(uow, catalog, account_id: int, final: str | None = None, now=NOW) -> Closure:
    return close_account(
        uow,
        account_id,
        final_register=Volume(final) if final is not None else None,
        channel="cash",
        idempotency_key=f"close-{account_id}",
        actor="clerk",
        now=now,
        catalog=catalog,
        policy=POLICY,
    )


def previous_account(uow, catalog, tariff: str) -> None:
    """The meter's account before: opened on 1 December at 0, read on the 10th (std 5 m³,
    work 5.4 m³), closed on the 20th at 6 m³."""
    before = make_account(
        uow, catalog, number="A0", comm_no=METER, tariff=tariff, opened=date(2024, 12, 1)
    )
    store(uow, (midnight(date(2024, 12, 10)), 1, 5_000, 5_400))
    close(uow, catalog, before, final="6", now=datetime(2024, 12, 20, 10, tzinfo=ZONE))


def final_litres(uow, account_id: int) -> int | None:
    with uow:
        (binding,) = uow.accounts.bindings(account_id)
        return binding.final_litres


@pytest.mark.parametrize(
    ("tariff", "final"), [(WORK_SUM_TARIFF, "8.000"), ("beijing-residential", "7.600")]
)
def test_without_a_final_register_the_latest_frozen_reading_since_the_binding_on_the_tariffs_basis(
    uow, work_sum_catalog, tariff, final
):
    previous_account(uow, work_sum_catalog, tariff)
    account_id = make_account(
        uow,
        work_sum_catalog,
        number="A1",
        comm_no=METER,
        tariff=tariff,
        opened=date(2025, 1, 1),
        opening_litres=6_000,
    )
    store(
        uow,
        (midnight(date(2025, 1, 2)), 1, 6_800, 7_000),
        (midnight(date(2025, 1, 3)), 1, 7_600, 8_000),
        (datetime(2025, 1, 3, 8, tzinfo=ZONE), 0, 7_700, 8_200),  # real-time: not frozen
        (midnight(date(2025, 1, 5)), 1, 9_000, 9_500),  # after the closing
    )

    closure = close(uow, work_sum_catalog, account_id)

    assert closure.final_register == final
    assert final_litres(uow, account_id) == Volume(final).litres


def test_the_previous_accounts_reading_is_not_the_final_register(uow, work_sum_catalog):
    """No frozen reading since the binding: the closing keeps no final register, rather than
    the previous account's (below this account's opening, which would refuse the closing)."""
    previous_account(uow, work_sum_catalog, WORK_SUM_TARIFF)
    account_id = make_account(
        uow,
        work_sum_catalog,
        number="A1",
        comm_no=METER,
        tariff=WORK_SUM_TARIFF,
        opened=date(2025, 1, 1),
        opening_litres=6_000,
    )

    closure = close(uow, work_sum_catalog, account_id, now=NOW + timedelta(days=1))

    assert closure.final_register is None
    assert final_litres(uow, account_id) is None
    with uow:
        account = uow.accounts.get(account_id)
        assert account is not None and account.status == "closed"


@pytest.mark.parametrize(
    ("tariff", "before", "tail"),
    [("beijing-residential", 783, 522), (WORK_SUM_TARIFF, 1_044, 261)],
)
def test_the_gas_up_to_the_final_register_is_billed_before_the_credit_is_paid_back(
    uow, work_sum_catalog, tariff, before, tail
):
    """Opened at 6 m³ with 30.00 yuan; read on 3 January at std 9 m³, work 10 m³ and billed;
    the clerk reads 11 m³ off the meter. 5 m³ in all at 2.61 yuan on either basis (std: 3
    then 2, work: 4 then 1): 13.05 billed and 16.95 paid back."""
    account_id = make_account(
        uow,
        work_sum_catalog,
        comm_no=METER,
        tariff=tariff,
        opened=date(2025, 1, 1),
        opening_litres=6_000,
    )
    ledger.record_payment(
        uow,
        account_id=account_id,
        amount_fen=3_000,
        channel="cash",
        idempotency_key="p1",
        actor="clerk",
        at=midnight(date(2025, 1, 1)),
    )
    store(uow, (midnight(date(2025, 1, 3)), 1, 9_000, 10_000))
    bill_accounts(uow, [account_id], catalog=work_sum_catalog, now=NOW - timedelta(hours=12))
    prepaid = AccountCode.prepaid(str(account_id))
    with uow:
        assert uow.ledger.balances_of(account_id)[prepaid].available == 3_000 - before

    closure = close(uow, work_sum_catalog, account_id, final="11")

    assert (closure.billed_fen, closure.refunded_fen) == (tail, 3_000 - 1_305)
    with uow:
        assert uow.ledger.balances_of(account_id)[prepaid].available == 0
        (entry,) = [e for e in uow.audit.entries() if e.action == "account.close"]
        assert json.loads(entry.after)["billed_fen"] == tail


# -- a closed account takes a payment only to settle what it owes ------------------------


def pay(uow, account_id: int, fen: int, key: str) -> PaymentOutcome:
    return take_payment(
        uow,
        account_id=account_id,
        amount_fen=fen,
        channel="cash",
        idempotency_key=key,
        actor="clerk",
        now=NOW + timedelta(hours=1),
        policy=POLICY,
    )


@pytest.mark.parametrize("mode", [BillingMode.SYSTEM, BillingMode.METER])
def test_a_closed_account_takes_a_payment_up_to_what_its_closing_left_owing(
    uow, work_sum_catalog, mode
):
    """Opened at 6 m³ with 1.50 yuan paid (meter mode: none loaded on the meter), closed at
    8 m³: 2 m³ at 2.61 yuan billed, 5.22 yuan. System mode owes 3.72 in prepaid; meter
    mode owes 3.72 on meter_credit (the shadow billed 5.22 there, the closing netted the
    1.50 prepaid held against it; before the netting 1.50 was paid back and 5.22 owed).
    A payment settles the debt where it is, never more; nothing is kept of a refused
    one; a key taken before the closing replays."""
    account_id = make_account(uow, work_sum_catalog, comm_no=METER, mode=mode, opening_litres=6_000)
    ledger.record_payment(
        uow,
        account_id=account_id,
        amount_fen=100,
        channel="cash",
        idempotency_key="p1",
        actor="clerk",
        at=midnight(date(2025, 1, 1)),
    )
    before = pay(uow, account_id, 50, "before")  # taken while active (meter mode: a top-up)
    if before.top_up_id is not None:  # cancelled before it went: 1.50 stays in prepaid
        cancel_command(uow, None, before.top_up_id, actor="clerk", now=NOW)  # type: ignore[arg-type]
    closure = close(uow, work_sum_catalog, account_id, final="8")
    assert closure.billed_fen == 522
    owed = 522 - 100 - 50  # in meter mode too: the 1.50 in prepaid netted, not paid back
    assert closure.owed_fen == owed
    prepaid = AccountCode.prepaid(str(account_id))
    credit = AccountCode.meter_credit(str(account_id))
    with uow:
        kept = uow.ledger.transfers_of(account_id, limit=1_000)
        trail = len(list(uow.audit.entries()))

    with pytest.raises(
        Conflict, match=f"owes {owed // 100}.{owed % 100:02d} yuan \\({owed} fen\\)"
    ):
        pay(uow, account_id, owed + 1, "too-much")
    with uow:
        assert uow.ledger.transfers_of(account_id, limit=1_000) == kept
        assert len(list(uow.audit.entries())) == trail

    part = pay(uow, account_id, 200, "part")
    rest = pay(uow, account_id, owed - 200, "rest")

    assert part.new and rest.new and (part.top_up_id, rest.top_up_id) == (None, None)
    assert (part.owed_fen, rest.owed_fen) == (owed - 200, 0)
    with uow:
        balances = uow.ledger.balances_of(account_id)
        assert (balances[prepaid].available, balances[credit].available) == (0, 0)
        assert uow.ledger.verify().ok
        paid = [e for e in uow.audit.entries() if e.action == "ledger.payment"]
        assert len(paid) == 4 and json.loads(paid[-1].after)["owed_before_fen"] == owed - 200
    with pytest.raises(Conflict, match="is closed: it takes no payment"):
        pay(uow, account_id, 1, "after")

    again = pay(uow, account_id, 50, "before")  # accepted before the closing: replayed
    assert not again.new and again.payment.id == before.payment.id
    assert again.top_up_id == before.top_up_id
    assert not pay(uow, account_id, 200, "part").new


# -- the final bill netted (meter mode) ----------------------------------------------------


@pytest.mark.parametrize(
    ("paid", "netted", "refunded", "owed"), [(3_000, 958, 2_042, 0), (500, 500, 0, 458)]
)
def test_closing_nets_what_prepaid_holds_against_the_meters_tail(
    uow, work_sum_catalog, paid, netted, refunded, owed
):
    """Meter mode, opened at 6 m³, `paid` in prepaid, none loaded on the meter; closed at
    9.67 m³: 3.67 m³ at 2.61 yuan, 9.58 yuan billed to meter_credit. 30.00 paid: 9.58 moved
    to meter_credit, 20.42 paid back, nothing owed; 5.00 paid: all 5.00 moved, nothing paid
    back, 4.58 owed on meter_credit. The ledger still adds up to zero."""
    account_id = make_account(
        uow, work_sum_catalog, comm_no=METER, mode=BillingMode.METER, opening_litres=6_000
    )
    ledger.record_payment(
        uow,
        account_id=account_id,
        amount_fen=paid,
        channel="cash",
        idempotency_key="p1",
        actor="clerk",
        at=midnight(date(2025, 1, 1)),
    )

    closure = close(uow, work_sum_catalog, account_id, final="9.67")

    assert closure.billed_fen == 958
    assert closure.netting is not None and closure.netting.amount == netted
    assert (closure.refunded_fen, closure.owed_fen) == (refunded, owed)
    prepaid = AccountCode.prepaid(str(account_id))
    credit = AccountCode.meter_credit(str(account_id))
    with uow:
        balances = uow.ledger.balances_of(account_id)
        assert (balances[prepaid].available, balances[credit].available) == (0, -owed)
        netting = uow.ledger.transfer_by_key(f"close-net:close-{account_id}")
        assert netting is not None and netting.id == closure.netting.id
        assert (netting.debit_account, netting.credit_account) == (prepaid, credit)
        report = uow.ledger.verify()
        assert report.ok and (report.posted_total, report.pending_total) == (0, 0)
        (entry,) = [e for e in uow.audit.entries() if e.action == "account.close"]
        after = json.loads(entry.after)
        assert (after["netting"], after["netted_fen"], after["owed_fen"]) == (
            netting.id,
            netted,
            owed,
        )
        kept = uow.ledger.transfers_of(account_id, limit=1_000)

    with pytest.raises(Conflict, match="already closed"):  # the same closing again
        close(uow, work_sum_catalog, account_id, final="9.67")
    with uow:
        assert uow.ledger.transfers_of(account_id, limit=1_000) == kept
