"""Bounded money over the staff API: the overflow attack answers 422 with a message."""

from __future__ import annotations

from tests.e2e.staff_helpers import API, assert_error, key, open_account


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
    error = assert_error(attack, 422, "amount_out_of_range")
    assert "maximum" in error["message"]
    for amount in (2**63 - 1, 999_999_999_999, 500_001):
        refused = client.post(
            f"{base}/payments",
            json={"amount_fen": amount, "channel": "cash"},
            headers={**clerk, **key()},
        )
        assert_error(refused, 422, "amount_out_of_range")
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
