"""Bounded money over the staff API: the overflow attack answers 422 with a message."""

from __future__ import annotations

from decimal import Decimal

from fastapi.testclient import TestClient

from gasbill.api.app import create_app
from gasbill.config import MoneySettings
from tests.e2e.staff_helpers import (
    API,
    account_body,
    assert_error,
    key,
    login,
    open_account,
    staff_settings,
)


def test_the_overflow_attack_answers_422_and_changes_nothing(client, clerk, auditor):
    account = open_account(client, clerk)
    base = f"{API}/accounts/{account['id']}"
    paid = client.post(
        f"{base}/payments",
        json={"amount_fen": 10_000, "channel": "cash"},
        headers={**clerk, **key()},
    )
    assert paid.status_code == 201, paid.text
    attack = client.post(
        f"{base}/adjustments",
        json={"amount_fen": 2**63 - 1, "target": "prepaid", "reason": "overflow"},
        headers={**auditor, **key()},
    )
    # past the ledger's bound (±10^15 fen): refused as the request's form, naming the bound
    error = assert_error(attack, 422, "invalid_request")
    assert "1000000000000000" in error["message"]
    for amount, code in (
        (2**63 - 1, "invalid_request"),
        (999_999_999_999, "amount_out_of_range"),  # within the ledger's bound, over the limit
        (500_001, "amount_out_of_range"),
    ):
        refused = client.post(
            f"{base}/payments",
            json={"amount_fen": amount, "channel": "cash"},
            headers={**clerk, **key()},
        )
        assert_error(refused, 422, code)
    over_limit = client.post(
        f"{base}/adjustments",
        json={"amount_fen": 10**15, "target": "prepaid", "reason": "overflow"},
        headers={**auditor, **key()},
    )
    assert "maximum" in assert_error(over_limit, 422, "amount_out_of_range")["message"]
    balance = client.get(f"{base}/balance", headers=clerk).json()["balances"]["prepaid"]
    assert balance["posted_fen"] == 10_000


def test_a_meter_mode_payment_above_the_top_up_maximum_is_refused(client, clerk):
    account = open_account(client, clerk, billing_mode="meter")
    base = f"{API}/accounts/{account['id']}"
    ok = client.post(
        f"{base}/payments",
        json={"amount_fen": 500_000, "channel": "cash"},
        headers={**clerk, **key()},
    )
    assert ok.status_code == 201, ok.text
    refused = client.post(
        f"{base}/payments",
        json={"amount_fen": 500_001, "channel": "cash"},
        headers={**clerk, **key()},
    )
    assert_error(refused, 422, "amount_out_of_range")


def _lower_limits_client(db_url, engine, catalog, clock, passwords):
    """An app whose [money] maxima are 100 yuan a payment and 50 yuan a top-up."""
    settings = staff_settings(db_url).model_copy(
        update={
            "money": MoneySettings(max_payment_yuan=Decimal("100"), max_top_up_yuan=Decimal("50"))
        }
    )
    app = create_app(settings, engine=engine, catalog=catalog, clock=clock, passwords=passwords)
    return TestClient(app)


def test_an_openings_first_payment_keeps_the_configured_maxima(
    db_url, engine, catalog, clock, passwords, user_ids
):
    with _lower_limits_client(db_url, engine, catalog, clock, passwords) as client:
        clerk = {"Authorization": f"Bearer {login(client, 'clerk').json()['access_token']}"}
        customer = client.post(f"{API}/customers", json={"name": "王芳"}, headers=clerk).json()
        cases = [
            ("system", 10_001, "A0001"),  # above the payment maximum
            ("meter", 5_001, "A0002"),  # above the top-up maximum: it goes to the meter
        ]
        for mode, fen, number in cases:
            body = account_body(customer["id"], billing_mode=mode, initial_fen=fen, number=number)
            refused = client.post(f"{API}/accounts", json=body, headers=clerk)
            error = assert_error(refused, 422, "amount_out_of_range")
            assert "maximum" in error["message"] and "config [money]" in error["message"]
        listed = client.get(f"{API}/accounts?customer_id={customer['id']}", headers=clerk)
        assert listed.status_code == 200 and listed.json() == [], listed.text
        within = account_body(customer["id"], billing_mode="meter", initial_fen=5_000)
        assert client.post(f"{API}/accounts", json=within, headers=clerk).status_code == 201


def test_an_amount_is_a_whole_number_of_fen_however_json_spells_it(client, clerk):
    """3185.0 is the JSON integer 3185 (OpenAPI 3.1 counts it so); a fraction of a fen,
    a string or a float past 2^53 is refused with 422."""
    account = open_account(client, clerk)
    base = f"{API}/accounts/{account['id']}"
    paid = client.post(
        f"{base}/payments",
        json={"amount_fen": 3185.0, "channel": "cash"},
        headers={**clerk, **key()},
    )
    assert paid.status_code == 201, paid.text
    for amount in (3185.5, "3185", 2.0**60, True):
        refused = client.post(
            f"{base}/payments",
            json={"amount_fen": amount, "channel": "cash"},
            headers={**clerk, **key()},
        )
        assert refused.status_code == 422, (amount, refused.text)
    balance = client.get(f"{base}/balance", headers=clerk).json()["balances"]["prepaid"]
    assert balance["posted_fen"] == 3185
