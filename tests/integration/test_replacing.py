"""Replacing a meter in both modes: the old register closed, the new one opened; in meter
mode the old meter's credit settled and carried onto the new meter by `openaccount`."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from gasbill.adapters.db.tables.readings import MeterReading
from gasbill.domain.accounts import AccountError, BillingMode
from gasbill.domain.ledger import AccountCode
from gasbill.domain.money import Volume
from gasbill.domain.outbox import CommandStatus
from gasbill.service.accounts import Conflict, NewAccount, Replacement, create_customer
from gasbill.service.opening import open_with_payment, opening_progress
from gasbill.service.replacing import replace_account_meter
from tests.integration.billing_helpers import make_account, store_readings
from tests.integration.test_outbox import (
    POLICY,
    T0,
    ScriptedPlatform,
    balances,
    command,
    report,
    run,
    top_up,
)

OLD = "12345678901234"
NEW = "98765432109876"
COUNTERS = {
    "card_charge_times": 0,
    "card_charge_value": 0,
    "card_total_value": 0,
    "remote_charge_times": 1,
    "remote_charge_value": 100,
    "remote_total_value": 100,
}


def replace(uow, catalog, account_id, at, final="10", opening="0.5", key="r1", now=None):
    return replace_account_meter(
        uow,
        Replacement(account_id, at, Volume(final), NEW, Volume(opening)),
        idempotency_key=key,
        actor="clerk",
        now=now or at,
        catalog=catalog,
        policy=POLICY,
    )


def opened_meter_account(uow, engine, catalog, platform):
    """A meter-mode account opened on its meter with 100.00 yuan, baseline read."""
    customer = create_customer(uow, name="household", actor="clerk")
    opened = open_with_payment(
        uow,
        NewAccount(
            customer_id=customer.id,
            number="M1",
            company_no="1001",
            billing_mode=BillingMode.METER,
            tariff_id="beijing-residential",
            opened_on=T0.date(),
            meter_comm_no=OLD,
            opening_register=Volume.of_litres(0),
            bound_at=T0,
            persons=3,
        ),
        initial_fen=10_000,
        channel="counter",
        idempotency_key="open-1",
        actor="clerk",
        now=T0,
        catalog=catalog,
        policy=POLICY,
    )
    run(engine, platform)
    report(uow, platform.finish(1, 3, json.dumps({"success": 0, "remain": 100.0})))
    run(engine, platform)
    report(uow, platform.finish(2, 3, COUNTERS))
    return opened.account.id


def test_system_mode_closes_the_old_register_and_opens_the_new_one(uow, catalog):
    account_id = make_account(uow, catalog, comm_no=OLD, opening_litres=1_000)
    at = T0 + timedelta(days=3)
    done = replace(uow, catalog, account_id, at, final="345", opening="0.004")
    assert done.opening_command_id is None and done.ledger_credit_fen is None
    with uow:
        bindings = uow.accounts.bindings(account_id)
        actions = [e.action for e in uow.audit.entries()]
    assert [(b.final_litres, b.unbound_at, b.opening_litres) for b in bindings] == [
        (345_000, at, 1_000),
        (None, None, 4),
    ]
    assert actions[-1] == "meter.replace"


@pytest.mark.parametrize(
    ("final", "at_offset", "message"),
    [
        ("0.5", timedelta(days=1), "below the old meter's opening"),
        ("345", timedelta(0), "after the old meter was bound"),
        ("345", timedelta(days=400), "in the future"),
    ],
)
def test_a_replacement_that_cannot_be_is_refused_and_nothing_stored(
    uow, catalog, final, at_offset, message
):
    account_id = make_account(uow, catalog, comm_no=OLD, opening_litres=1_000)
    with uow:
        bound_at = uow.accounts.active_binding(account_id).bound_at
    with pytest.raises(AccountError, match=message):
        replace(uow, catalog, account_id, bound_at + at_offset, final=final, now=T0 + timedelta(2))
    with uow:
        assert len(uow.accounts.bindings(account_id)) == 1


def test_meter_mode_settles_the_old_meter_and_opens_the_new_one_with_its_credit(
    uow, engine, catalog
):
    platform = ScriptedPlatform()
    account_id = opened_meter_account(uow, engine, catalog, platform)
    day = T0 + timedelta(days=1)
    store_readings(uow, OLD, [(day, 10_000)])  # 10 m³ used on the old meter
    with uow:
        reading = uow.session.get(MeterReading, ("1001", OLD, 1, day))
        reading.remain_money = 73_900  # 73.900 yuan, as the meter reported it
        uow.session.add(reading)
        uow.commit()

    done = replace(uow, catalog, account_id, day + timedelta(hours=1), final="10")

    credit = done.ledger_credit_fen
    assert 0 < credit < 10_000  # 100.00 less the old meter's 10 m³, shadow-billed first
    assert done.meter_remain_fen == 7_390
    assert done.difference_fen == 7_390 - credit
    prepaid, meter_credit = balances(uow, account_id)
    assert (prepaid.posted, prepaid.available) == (credit, 0)  # back, and held for the new meter
    assert (meter_credit.posted, meter_credit.pending) == (0, credit)
    opening = command(uow, done.opening_command_id)
    assert opening.ctrl_type.endswith("openaccount") and opening.amount_fen == credit
    run(engine, platform, at=day + timedelta(hours=1))
    sent = platform.records[3]
    assert sent.target_comm_no == NEW
    data = platform.data_of(3)
    assert data["charge_value"] == data["total_value"] == Decimal(credit) / 100

    report(uow, platform.finish(3, 3, json.dumps({"success": 0, "remain": credit / 100})))
    prepaid, meter_credit = balances(uow, account_id)
    assert (prepaid.posted, meter_credit.posted, meter_credit.pending) == (0, credit, 0)
    stages = [(p["kind"], p["stage"]) for p in opening_progress(uow, account_id)]
    assert stages[2:] == [("account opening", "confirmed"), ("top-up counter read", "queued")]
    with uow:
        settled = [e for e in uow.audit.entries() if e.action == "meter.replace.settle"]
    assert len(settled) == 1 and '"meter_remain":"73.90"' in settled[0].after


def test_a_refused_opening_of_the_new_meter_leaves_the_credit_in_prepaid(uow, engine, catalog):
    platform = ScriptedPlatform()
    account_id = opened_meter_account(uow, engine, catalog, platform)
    at = T0 + timedelta(hours=5)
    done = replace(uow, catalog, account_id, at, final="0")
    assert done.ledger_credit_fen == 10_000 and done.meter_remain_fen is None
    run(engine, platform, at=at)
    report(uow, platform.finish(3, 3, json.dumps({"success": 1, "remain": 0})), at=at)
    assert command(uow, done.opening_command_id).status == CommandStatus.REFUSED
    prepaid, meter_credit = balances(uow, account_id)
    assert (prepaid.available, meter_credit.posted, meter_credit.pending) == (10_000, 0, 0)


def test_a_top_up_in_flight_on_the_old_meter_blocks_the_replacement(uow, engine, catalog):
    platform = ScriptedPlatform()
    account_id = opened_meter_account(uow, engine, catalog, platform)
    with uow:
        prepaid = AccountCode.prepaid(str(account_id))
        assert uow.ledger.balances_of(account_id)[prepaid].available == 0
    from gasbill.service.ledger import record_payment

    record_payment(
        uow,
        account_id=account_id,
        amount_fen=5_000,
        channel="counter",
        idempotency_key="pay-2",
        actor="clerk",
        at=T0,
    )
    top_up(uow, account_id, 5_000, "t1")
    with pytest.raises(Conflict, match="still queued"):
        replace(uow, catalog, account_id, T0 + timedelta(hours=5))
    with uow:
        assert len(uow.accounts.bindings(account_id)) == 1
