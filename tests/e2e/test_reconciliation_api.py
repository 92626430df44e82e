"""GET /api/v1/reconciliation over HTTP: the auditors' report, in JSON and CSV."""

from __future__ import annotations

import csv
import io

import pytest

from tests.e2e.staff_helpers import API, METER, assert_error, open_account

pytestmark = pytest.mark.db


@pytest.fixture
def meter_account(client, clerk):
    return open_account(client, clerk, billing_mode="meter")


def test_a_clerk_may_not_read_the_reconciliation(client, clerk, meter_account):
    assert_error(client.get(f"{API}/reconciliation", headers=clerk), 403, "forbidden")


def test_nobody_without_a_token_may_read_it(client):
    assert_error(client.get(f"{API}/reconciliation"), 401, "unauthorized")


def test_an_auditor_gets_one_line_per_meter_mode_account_in_json(client, auditor, meter_account):
    response = client.get(f"{API}/reconciliation", headers=auditor)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["totals"]["accounts"] == 1
    assert body["totals"]["differing"] == 1
    (line,) = body["accounts"]
    assert line["account_id"] == meter_account["id"]
    assert line["meter_comm_no"] == METER
    # nothing has come from the meter yet: every check lacks its observation
    assert line["balance"]["cause"] == "missing_readings"
    assert line["counters"]["cause"] == "missing_readings"
    assert body["totals"]["by_cause"]["missing_readings"] == 1


def test_an_auditor_gets_csv_on_asking(client, auditor, meter_account):
    response = client.get(f"{API}/reconciliation?format=csv", headers=auditor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["check"] for r in rows] == ["balance", "counters", "price"]
    assert {r["account_id"] for r in rows} == {str(meter_account["id"])}


def test_a_company_filter_leaves_out_other_companies(client, auditor, meter_account):
    response = client.get(f"{API}/reconciliation?company=9999", headers=auditor)
    assert response.status_code == 200, response.text
    assert response.json()["accounts"] == []


def test_an_unknown_format_answers_the_error_shape(client, auditor):
    response = client.get(f"{API}/reconciliation?format=xml", headers=auditor)
    assert_error(response, 422, "invalid_request")


def test_the_readings_report_is_the_auditors(client, clerk):
    response = client.get(f"{API}/reconciliation/readings", headers=clerk)
    assert_error(response, 403, "forbidden")


def test_the_readings_report_lists_each_account_and_counts_what_it_compared(
    client, auditor, clerk, meter_account
):
    system = open_account(
        client, clerk, billing_mode="system", number="S-2", meter_comm_no="22222222222222"
    )
    response = client.get(f"{API}/reconciliation/readings", headers=auditor)
    assert response.status_code == 200, response.text
    body = response.json()
    lines = {line["account_id"]: line for line in body["accounts"]}
    assert set(lines) == {meter_account["id"], system["id"]}
    assert lines[meter_account["id"]]["billing_mode"] == "meter"
    assert lines[system["id"]]["billing_mode"] == "system"
    assert lines[meter_account["id"]]["meter_comm_no"] == METER
    # no frozen reading has come in yet: nothing compared, nothing differing
    assert body["totals"] == {
        "accounts": 2, "readings": 0, "compared": 0, "agreed": 0, "differing": 0,
        "in_flight": 0, "accounts_differing": 0,
    }  # fmt: skip
    one = client.get(
        f"{API}/reconciliation/readings?account_id={system['id']}", headers=auditor
    ).json()
    assert [line["account_id"] for line in one["accounts"]] == [system["id"]]
