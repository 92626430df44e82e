"""Every edge answers 4xx (issue 11): what each bad input gets, on both databases.

NUL in text, path and query; integers past their columns; date-times
outside the years a utility meets; JSON nested 30,000 deep; a body too
large before authentication; unknown ids; and the Report endpoint's own
batch limit.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from fastapi.testclient import TestClient

from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.api.app import create_app
from tests.e2e.staff_helpers import (
    API,
    PASSWORD,
    assert_error,
    auth,
    key,
    open_account,
    staff_settings,
)

KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
DEEP = b"[" * 30_000 + b"]" * 30_000


@pytest.fixture
def both(db_url, engine, catalog, clock, passwords, user_ids):
    """One app with the staff API and the platform API (a push key for company 1001)."""
    settings = staff_settings(db_url).model_copy(
        update={"push": PushSettings(keys={KEYS["company_no"]: KEYS["data_api_key"]})}
    )
    app = create_app(settings, engine=engine, catalog=catalog, clock=clock, passwords=passwords)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def clerk_of(both):
    return auth(both, "clerk")


def platform_failed(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["State"] == "failed" and body["Message"], body
    return body["Message"]


# -- NUL ----------------------------------------------------------------------------------


def test_nul_in_a_login_is_422_not_500(both):
    for body in (
        {"username": "cl\x00erk", "password": PASSWORD},
        {"username": "x", "password": "\x00"},
    ):
        assert_error(both.post(f"{API}/auth/login", json=body), 422, "invalid_request")


def test_nul_in_any_text_field_is_422_and_stores_nothing(both, clerk_of):
    assert_error(
        both.post(f"{API}/customers", json={"name": "王\x00芳"}, headers=clerk_of),
        422,
        "invalid_request",
    )
    account = open_account(both, clerk_of)
    base = f"{API}/accounts/{account['id']}"
    for path, body in (
        ("/customers", {"name": "王芳", "address": "a\x00"}),
        ("/accounts", {"number": "A\x00", "customer_id": 1}),
        (
            f"/accounts/{account['id']}/payments",
            {"amount_fen": 100, "channel": "cash", "memo": "\x00"},
        ),
        (
            f"/accounts/{account['id']}/refunds",
            {"amount_fen": 1, "channel": "cash", "reason": "\x00"},
        ),
    ):
        response = both.post(f"{API}{path}", json=body, headers={**clerk_of, **key()})
        assert_error(response, 422, "invalid_request")
    lines = both.get(f"{base}/ledger", headers=clerk_of).json()
    assert lines == []


def test_nul_in_a_path_or_query_is_422_on_both_apis(both, clerk_of):
    assert_error(
        both.post(f"{API}/transfers/ab%00/reversal", json={"reason": "x"}, headers=clerk_of),
        422,
        "invalid_request",
    )
    assert_error(both.get(f"{API}/customers?search=a%00", headers=clerk_of), 422, "invalid_request")
    reply = both.post("/api/Data/MeterData/GetRealModel/88%00", headers=KEYS)
    assert "NUL" in platform_failed(reply, 422)


def test_a_reason_of_a_lone_nul_is_422_and_openapi_shows_it(both, clerk_of):
    account = open_account(both, clerk_of)
    auditor = auth(both, "auditor")
    response = both.post(
        f"{API}/accounts/{account['id']}/adjustments",
        json={"amount_fen": 100, "target": "prepaid", "reason": "\x00"},
        headers={**auditor, **key()},
    )
    assert_error(response, 422, "invalid_request")
    pattern = both.get("/openapi.json").json()["components"]["schemas"]["AdjustmentIn"][
        "properties"
    ]["reason"]["pattern"]
    assert re.search(pattern, "\x00") is None and re.search(pattern, "late fee")
    assert both.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk_of).json() == []


@pytest.mark.parametrize(
    "query",
    ["/accounts?ofset=50", "/customers?serch=wang", "/commands?acount_id=7&limit=5"],
)
def test_an_unknown_query_parameter_is_422_naming_it(both, clerk_of, query):
    error = assert_error(both.get(f"{API}{query}", headers=clerk_of), 422, "invalid_request")
    unknown = query.split("?")[1].split("=")[0]
    assert unknown in error["message"]
    assert error["details"][0]["loc"] == ["query", unknown]


def test_amounts_show_their_bounds_and_an_adjustment_never_0(both, clerk_of):
    """Thresholds within the ledger's bound (±10^15 fen, exact integers in the document), an
    adjustment within the configured limit (10,000 yuan by default) and never 0."""
    schemas = both.get("/openapi.json").json()["components"]["schemas"]
    amount = schemas["AdjustmentIn"]["properties"]["amount_fen"]
    assert (amount["minimum"], amount["maximum"]) == (-1_000_000, 1_000_000)
    assert amount["not"] == {"const": 0}
    warning = schemas["AccountIn"]["properties"]["warning_fen"]
    assert (warning["minimum"], warning["maximum"]) == (-(10**15), 10**15)
    assert schemas["AccountIn"]["properties"]["initial_fen"]["maximum"] <= 10**15
    account = open_account(both, clerk_of)
    auditor = auth(both, "auditor")
    for fen, code in (
        (0, "invalid_request"),
        (10**15 + 1, "invalid_request"),
        (1_000_001, "amount_out_of_range"),
        (-1_000_001, "amount_out_of_range"),
    ):
        response = both.post(
            f"{API}/accounts/{account['id']}/adjustments",
            json={"amount_fen": fen, "target": "prepaid", "reason": "fix"},
            headers={**auditor, **key()},
        )
        assert_error(response, 422, code)
    assert both.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk_of).json() == []


# -- integers, date-times ------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "/accounts?offset=9223372036854775808",
        "/accounts?offset=9223372036854775807",
        "/commands?account_id=2147483648",
        "/exceptions?offset=2147483648",
        "/reconciliation?account_id=2147483648",
    ],
)
def test_integers_past_their_columns_are_422(both, clerk_of, query):
    headers = auth(both, "auditor") if query.startswith("/reconciliation") else clerk_of
    assert_error(both.get(f"{API}{query}", headers=headers), 422, "invalid_request")


@pytest.mark.parametrize(
    "field",
    [
        {"bound_at": "0001-01-01T00:00:00+08:00"},
        {"bound_at": "9999-12-31T23:59:59-08:00"},
        {"opened_on": "0001-01-01"},
        {"opened_on": "9999-12-31"},
    ],
)
def test_date_times_outside_sane_years_are_422(both, clerk_of, field):
    customer = both.post(f"{API}/customers", json={"name": "王芳"}, headers=clerk_of).json()
    from tests.e2e.staff_helpers import account_body

    response = both.post(
        f"{API}/accounts", json=account_body(customer["id"], **field), headers=clerk_of
    )
    assert_error(response, 422, "invalid_request")


@pytest.mark.parametrize(
    "at", ["0001-01-01 00:00:00", "9999-12-31T23:59:59-08:00", "0001-01-01T00:00:00+08:00"]
)
def test_platform_times_outside_sane_years_are_refused(both, at):
    body = {"meter_comm_no": "12345678901234", "data_type": 1, "acquisition_time": at, "std_sum": 1}
    reply = both.post("/api/Data/MeterData/Add", json=body, headers=KEYS)
    assert 400 <= reply.status_code < 500, reply.text
    assert reply.json()["State"] == "failed"


# -- depth and size ---------------------------------------------------------------------


def test_json_nested_30000_deep_is_400_on_both_apis(both, clerk_of):
    headers = {"content-type": "application/json"}
    staff = both.post(f"{API}/customers", content=DEEP, headers={**clerk_of, **headers})
    assert_error(staff, 400, "bad_request")
    report = both.post("/api/Conf/CtrlData/Report", content=DEEP, headers={**KEYS, **headers})
    assert "deeper" in platform_failed(report, 400)


def test_a_large_unauthenticated_body_is_413_before_anything_else(both):
    big = b"x" * (3 * 1024 * 1024)
    started = time.monotonic()
    response = both.post(
        f"{API}/customers", content=big, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert time.monotonic() - started < 2

    def chunks():
        for _ in range(40):
            yield b"y" * 65_536

    streamed = both.post(f"{API}/auth/login", content=chunks())
    assert_error(streamed, 413, "payload_too_large")


# -- unknown ids, reports ---------------------------------------------------------------


def test_cancel_or_retry_of_an_unknown_command_is_404(both, clerk_of):
    for action in ("cancel", "retry"):
        response = both.post(f"{API}/commands/999999/{action}", headers=clerk_of)
        assert_error(response, 404, "not_found")


def test_a_report_batch_of_thousands_is_answered_item_by_item(both):
    items = [
        {"ctrl_id": n, "meter_comm_no": "12345678901234", "ctrl_state": 3} for n in range(1, 2001)
    ]
    reply = both.post(
        "/api/Conf/CtrlData/Report",
        content=json.dumps(items),
        headers={**KEYS, "content-type": "application/json"},
    )
    assert reply.status_code == 200, reply.text[:300]
    assert len(reply.json()["Data"]) == 2000


def test_a_report_batch_over_its_limit_is_refused_whole_as_invalid(both):
    items = [{"ctrl_id": n, "meter_comm_no": "1", "ctrl_state": 3} for n in range(1, 5002)]
    reply = both.post("/api/Conf/CtrlData/Report", json=items, headers=KEYS)
    assert reply.status_code == 422, reply.text[:300]
    assert reply.json()["State"] == "failed"
    assert "at most 5000 reports" in reply.json()["Message"]


# -- OpenAPI tells the truth --------------------------------------------------------------


def test_openapi_shows_login_without_a_token_and_the_edges_statuses(both):
    spec = both.get("/openapi.json").json()
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == []
    assert {"400", "413", "422", "429"} <= set(login["responses"])
    pay = spec["paths"]["/api/v1/accounts/{account_id}/payments"]["post"]
    assert {"400", "413", "422", "503"} <= set(pay["responses"])
    assert "security" not in pay or pay["security"] != []


def test_a_wrong_method_is_405_with_every_allowed_method(both, clerk_of):
    response = both.request("PUT", f"{API}/customers", headers=clerk_of)
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"]
    platform = both.request("PUT", "/api/Data/MeterData/Add", headers=KEYS)
    assert platform.status_code == 405 and "POST" in platform.headers["Allow"]


def test_a_405_names_every_method_of_its_path_on_both_apis(both, clerk_of):
    """Every path in OpenAPI, asked with a method it does not serve: Allow lists its methods."""
    spec = both.get("/openapi.json").json()
    methods = ("GET", "POST", "PUT", "PATCH", "DELETE")
    wrong, asked = [], 0
    for template, operations in spec["paths"].items():
        served = {m.upper() for m in operations if m.upper() in methods}
        unserved = [m for m in methods if m not in served]
        if not unserved:
            continue
        path = template.replace("{", "").replace("}", "")  # any segment: only the method matters
        path = "/".join("1" if "_" in s and s.endswith("id") else s for s in path.split("/"))
        response = both.request(unserved[0], path, headers={**clerk_of, **KEYS})
        if response.status_code == 404:  # another template serves it (tariffs/{id}: reload)
            continue
        asked += 1
        allow = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
        if response.status_code != 405 or allow - {"HEAD", "OPTIONS"} != served:
            wrong.append((template, unserved[0], response.status_code, sorted(allow), served))
    assert wrong == [], "\n".join(map(str, wrong))
    assert asked > 40
