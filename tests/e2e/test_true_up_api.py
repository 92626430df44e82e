"""POST /api/v1/true-ups: the price-change true-up run on demand, by whom, and its record."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.e2e.staff_helpers import API, assert_error, open_account

pytestmark = pytest.mark.db


def test_a_clerk_may_not_run_the_true_up(client, clerk):
    assert_error(client.post(f"{API}/true-ups", headers=clerk), 403, "forbidden")


def test_nobody_without_a_token_may_run_it(client):
    assert_error(client.post(f"{API}/true-ups"), 401, "unauthorized")


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_an_auditor_or_admin_runs_it_and_the_run_is_audited(request, client, engine, role, clerk):
    open_account(client, clerk, billing_mode="meter")  # no campaign yet: nothing diverges
    headers = request.getfixturevalue(role)
    response = client.post(f"{API}/true-ups", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "accounts": 0,
        "days_changed": 0,
        "charged": "0.00",
        "refunded": "0.00",
        "transfers": [],
    }
    with engine.connect() as conn:
        actors = conn.execute(
            sa.text("SELECT actor FROM audit_log WHERE action = 'true_up.run'")
        ).all()
    assert [a for (a,) in actors] == [role]


def test_a_clerk_may_not_read_the_check_against_the_tariff_in_force(client, clerk):
    assert_error(client.get(f"{API}/true-ups/check", headers=clerk), 403, "forbidden")


def test_the_check_lists_meter_mode_accounts_against_the_tariff_in_force(client, auditor, clerk):
    account = open_account(client, clerk, billing_mode="meter")
    response = client.get(f"{API}/true-ups/check", headers=auditor)
    assert response.status_code == 200, response.text
    body = response.json()
    # not open on its meter yet: nothing charged, nothing owed; the account is listed once
    # its opening is confirmed, so none here
    assert body["totals"]["differing"] == 0
    assert all(a["account_id"] == account["id"] for a in body["accounts"])
