"""Every clerk's action through the staff API: a meter opened remotely with its progress,
look-ups by account and meter number, readings, campaigns, a command's reason and next
attempt, closing an account. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.commands import CtrlType
from tests.e2e.staff_helpers import API, METER, assert_error, key, open_account

pytestmark = pytest.mark.db


def test_a_meter_mode_account_is_opened_on_its_meter_with_its_first_payment(client, clerk, engine):
    account = open_account(
        client, clerk, billing_mode="meter", initial_fen=20_000, opened_on="2025-03-01"
    )
    assert [step["kind"] for step in account["opening"]] == ["account opening"]
    step = account["opening"][0]
    assert step["stage"] == "queued" and step["next_attempt_at"]
    with UnitOfWork(engine) as uow:
        commands = CommandStore(uow.session).of_account(account["id"])
        assert [c.ctrl_type for c in commands] == [CtrlType.OPEN_ACCOUNT]
        assert commands[0].amount_fen == 20_000
    progress = client.get(f"{API}/accounts/{account['id']}/opening", headers=clerk).json()
    assert progress == account["opening"]
    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["available_fen"] == 0  # held for the meter
    assert balance["balances"]["prepaid"]["pending_fen"] == -20_000


def test_a_system_mode_account_opens_without_a_command_and_takes_its_first_payment(client, clerk):
    account = open_account(client, clerk, initial_fen=5_000)
    assert account["opening"] is None
    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["available_fen"] == 5_000


def test_an_account_is_found_by_its_number_and_by_its_meter(client, clerk):
    account = open_account(client, clerk)
    by_number = client.get(f"{API}/accounts", params={"number": "A0001"}, headers=clerk)
    assert [a["id"] for a in by_number.json()] == [account["id"]]
    by_meter = client.get(f"{API}/accounts", params={"meter": METER}, headers=clerk)
    assert [a["id"] for a in by_meter.json()] == [account["id"]]
    nothing = client.get(f"{API}/accounts", params={"meter": "99999999999999"}, headers=clerk)
    assert nothing.status_code == 200 and nothing.json() == []


def test_readings_of_an_account_are_listed_newest_first(client, clerk, engine):
    account = open_account(client, clerk, opened_on="2025-01-01")
    from gasbill.adapters.db.tables.readings import MeterReading

    with UnitOfWork(engine) as uow:
        for day, litres in ((2, 13_000), (3, 14_250)):
            uow.session.add(
                MeterReading(
                    company_no="1001",
                    meter_comm_no=METER,
                    data_type=1,
                    acquisition_time=datetime(2025, 1, day, 16, tzinfo=UTC),
                    data_guid=bytes([day]) * 16,
                    std_sum=litres,
                    remain_money=88_500,
                )
            )
        uow.commit()
    lines = client.get(f"{API}/accounts/{account['id']}/readings", headers=clerk).json()
    assert [(r["std_sum"], r["remain_money"]) for r in lines] == [
        ("14.250", "88.500"),
        ("13.000", "88.500"),
    ]
    missing = client.get(f"{API}/accounts/999/readings", headers=clerk)
    assert_error(missing, 404, "not_found")


def test_closing_bills_to_the_final_register_pays_the_rest_back_and_closes_the_valve(client, clerk):
    """7.5 m³ since the opening (12.5 to 20 m³) at 2.61 yuan: 19.58 billed in the closing,
    10.42 of the 30.00 paid back."""
    account = open_account(client, clerk)
    paid = client.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 3_000, "channel": "cash"},
        headers={**clerk, **key()},
    )
    assert paid.status_code == 201, paid.text
    closed = client.post(
        f"{API}/accounts/{account['id']}/closure",
        json={"final_register": "20.000", "channel": "cash"},
        headers=clerk,
    )
    assert closed.status_code == 200, closed.text
    body = closed.json()
    assert body["final_register"] == "20.000"
    assert (body["billed_fen"], body["refunded_fen"]) == (1_958, 3_000 - 1_958)
    assert body["valve_command_id"] is not None
    shown = client.get(f"{API}/accounts/{account['id']}", headers=clerk).json()
    assert shown["status"] == "closed" and shown["meter"] is None
    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["available_fen"] == 0
    valve = client.get(f"{API}/commands/{body['valve_command_id']}", headers=clerk).json()
    assert valve["progress"]["kind"] == "valve close"
    again = client.post(f"{API}/accounts/{account['id']}/closure", json={}, headers=clerk)
    assert_error(again, 409, "conflict")


def test_a_final_register_below_the_opening_is_refused(client, clerk):
    account = open_account(client, clerk)  # opening register 12.5
    refused = client.post(
        f"{API}/accounts/{account['id']}/closure", json={"final_register": "3"}, headers=clerk
    )
    assert_error(refused, 422, "invalid_request")


def test_campaigns_are_listed_and_an_unknown_one_is_404(client, clerk, admin):
    assert client.get(f"{API}/campaigns", headers=clerk).json() == []
    assert_error(client.get(f"{API}/campaigns/7", headers=clerk), 404, "not_found")
    retry = client.post(f"{API}/campaigns/7/retry-failed", headers=admin)
    assert_error(retry, 404, "not_found")


def test_an_unknown_command_is_404(client, clerk):
    assert_error(client.get(f"{API}/commands/77", headers=clerk), 404, "not_found")


def test_a_meter_mode_meter_is_replaced_once_its_opening_has_ended(client, clerk, engine):
    """The old meter's credit decides what the new one is opened with: not while a prepay
    command is still in flight; afterwards the new meter gets an `openaccount` of its own."""
    account = open_account(
        client, clerk, billing_mode="meter", initial_fen=20_000, opened_on="2025-03-01"
    )
    body = {
        "at": "2025-03-01T07:00:00+00:00",  # the fake clock says 08:00
        "old_final_register": "12.5",
        "new_comm_no": "98765432109876",
    }
    url = f"{API}/accounts/{account['id']}/meter-replacements"
    assert_error(client.post(url, json=body, headers=clerk), 409, "conflict")
    command_id = account["opening"][0]["id"]
    cancelled = client.post(f"{API}/commands/{command_id}/cancel", headers=clerk)
    assert cancelled.status_code == 200, cancelled.text

    replaced = client.post(url, json=body, headers=clerk)
    assert replaced.status_code == 201, replaced.text
    done = replaced.json()
    assert (done["comm_no"], done["billing_mode"], done["ledger_credit"]) == (
        "98765432109876",
        "meter",
        "0.00",
    )
    assert done["old_final_register"] == "12.500" and done["meter_remain"] is None
    shown = client.get(f"{API}/accounts/{account['id']}", headers=clerk).json()
    assert shown["meter"]["comm_no"] == "98765432109876"
    assert [s["stage"] for s in shown["opening"]] == ["cancelled", "queued"]
    assert shown["opening"][-1]["id"] == done["opening_command_id"]
    with UnitOfWork(engine) as uow:
        opening = CommandStore(uow.session).get(done["opening_command_id"])
        assert opening.ctrl_type == CtrlType.OPEN_ACCOUNT
    future = {**body, "at": "2999-01-01T00:00:00+00:00", "new_comm_no": "11112222333344"}
    assert_error(client.post(url, json=future, headers=clerk), 422, "invalid_request")
