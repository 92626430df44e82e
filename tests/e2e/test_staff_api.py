"""The staff API over HTTP, on SQLite and PostgreSQL: a clerk's day through the API alone,
idempotent payments, corrections, every bad input's answer, exceptions, tariffs, settings
and the audit trail."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.app import create_app
from gasbill.config import AppSettings, ConfigError, DatabaseSettings, Settings
from gasbill.secret import masked
from tests.e2e.staff_helpers import (
    API,
    METER,
    account_body,
    add_exception,
    assert_error,
    key,
    open_account,
)

pytestmark = pytest.mark.db

# -- a clerk's day -------------------------------------------------------------------


def test_a_clerk_opens_an_account_takes_a_payment_and_sees_the_balance_and_ledger(client, clerk):
    customer = client.post(
        f"{API}/customers",
        json={"name": "王芳", "phone": "13800000000", "address": "朝阳区 1 号"},
        headers=clerk,
    )
    assert customer.status_code == 201, customer.text
    customer_id = customer.json()["id"]

    opened = client.post(f"{API}/accounts", json=account_body(customer_id), headers=clerk)
    assert opened.status_code == 201, opened.text
    account = opened.json()
    assert account["meter"]["comm_no"] == METER
    assert account["meter"]["opening_register"] == "12.500"
    assert account["billing_mode"] == "system"

    paid = client.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 10_000, "channel": "cash", "memo": "counter 3"},
        headers={**clerk, **key()},
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["amount"] == "100.00"
    assert paid.json()["kind"] == "payment"

    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["available_fen"] == 10_000
    assert balance["balances"]["prepaid"]["available"] == "100.00"

    lines = client.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk).json()
    assert [
        (t["kind"], t["amount_fen"], t["debit_account"], t["credit_account"]) for t in lines
    ] == [("payment", 10_000, "cash:cash", f"prepaid:{account['id']}")]
    assert lines[0]["actor"] == "clerk"

    found = client.get(f"{API}/customers", params={"search": "王"}, headers=clerk).json()
    assert [c["id"] for c in found] == [customer_id]
    mine = client.get(f"{API}/accounts", params={"customer_id": customer_id}, headers=clerk)
    assert [a["number"] for a in mine.json()] == ["A0001"]


def test_thresholds_change_and_a_meter_is_replaced(client, clerk):
    account = open_account(client, clerk)
    changed = client.patch(
        f"{API}/accounts/{account['id']}",
        json={"warning_fen": 5000, "cutoff_fen": -1000, "persons": 5},
        headers=clerk,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["warning_fen"], changed.json()["cutoff_fen"]) == (5000, -1000)

    replaced = client.post(
        f"{API}/accounts/{account['id']}/meter-replacements",
        json={
            "at": "2025-02-01T10:00:00+08:00",
            "old_final_register": "40.250",
            "new_comm_no": "98765432109876",
            "new_opening_register": "0.010",
        },
        headers=clerk,
    )
    assert replaced.status_code == 201, replaced.text
    assert replaced.json()["comm_no"] == "98765432109876"
    shown = client.get(f"{API}/accounts/{account['id']}", headers=clerk).json()
    assert shown["meter"]["comm_no"] == "98765432109876"


def audited(engine) -> list[tuple[str, str]]:
    with UnitOfWork(engine) as uow:
        return [(e.action, e.entity_id) for e in uow.audit.entries()]


def test_the_status_changes_only_by_the_closure_and_a_closed_account_not_at_all(
    client, clerk, engine
):
    """PATCH naming `status` is refused (422) pointing to the closure, whatever else it
    carries; once closed, the account refuses every change (409). Nothing kept or audited."""
    account = open_account(client, clerk)
    path = f"{API}/accounts/{account['id']}"
    trail = audited(engine)
    for body in (
        {"status": "closed"},
        {"status": "active"},
        {"status": None},
        {"status": "closed", "persons": 5, "warning_fen": 100},
    ):
        refused = client.patch(path, json=body, headers=clerk)
        error = assert_error(refused, 422, "invalid_request")
        assert error["message"] == (
            "body.status: the status is not changed by an update: close the account with "
            "POST /api/v1/accounts/{account_id}/closure (final reading, credit paid back, "
            "valve closed); a closed account is not reopened"
        ), body
        assert [(d["loc"], d["type"]) for d in error["details"]] == [
            (["body", "status"], "not_adjustable")
        ]
    shown = client.get(path, headers=clerk).json()
    assert (shown["status"], shown["persons"], shown["warning_fen"]) == ("active", 3, 2000)
    assert shown["meter"]["comm_no"] == METER
    assert audited(engine) == trail
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AccountUpdate"]
    assert "status" not in schema["properties"] and schema["additionalProperties"] is False

    closed = client.post(
        f"{path}/closure", json={"final_register": "20.000", "channel": "cash"}, headers=clerk
    )
    assert closed.status_code == 200, closed.text
    trail = audited(engine)
    for body in (
        {"persons": 5},
        {"tariff_id": "shanghai-residential"},
        {"cutoff_fen": -500, "reopen_fen": 0},
        {},
    ):
        error = assert_error(client.patch(path, json=body, headers=clerk), 409, "conflict")
        assert error["message"].startswith("account A0001 is closed: its closure settled it")
    reopened = client.patch(path, json={"status": "active"}, headers=clerk)
    error = assert_error(reopened, 422, "invalid_request")
    assert "a closed account is not reopened" in error["message"]
    shown = client.get(path, headers=clerk).json()
    assert (shown["status"], shown["persons"], shown["meter"]) == ("closed", 3, None)
    assert shown["tariff_id"] == "beijing-residential"
    assert audited(engine) == trail


# -- payments are idempotent -----------------------------------------------------------


def test_a_payment_needs_an_idempotency_key(client, clerk):
    account = open_account(client, clerk)
    response = client.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 100, "channel": "cash"},
        headers=clerk,
    )
    assert_error(response, 400, "idempotency_key_required")
    bad = client.post(
        f"{API}/accounts/{account['id']}/payments",
        json={"amount_fen": 100, "channel": "cash"},
        headers={**clerk, "Idempotency-Key": "has spaces"},
    )
    assert_error(bad, 400, "invalid_idempotency_key")


def test_the_same_key_replays_the_first_answer_and_pays_once(client, clerk, clock):
    account = open_account(client, clerk)
    path = f"{API}/accounts/{account['id']}/payments"
    headers = {**clerk, **key()}
    body = {"amount_fen": 5_000, "channel": "wechat"}
    first = client.post(path, json=body, headers=headers)
    clock.advance(minutes=5)
    again = client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"

    other = client.post(path, json={**body, "amount_fen": 6_000}, headers=headers)
    assert_error(other, 409, "idempotency_conflict")
    elsewhere = open_account(client, clerk, number="A0002", meter_comm_no="1234567890")
    moved = client.post(f"{API}/accounts/{elsewhere['id']}/payments", json=body, headers=headers)
    assert_error(moved, 409, "idempotency_conflict")

    lines = client.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk).json()
    assert len(lines) == 1
    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["posted_fen"] == 5_000


def test_concurrent_repeats_of_one_payment_make_one_transfer(client, clerk):
    account = open_account(client, clerk)
    path = f"{API}/accounts/{account['id']}/payments"
    headers = {**clerk, **key()}
    body = {"amount_fen": 2_500, "channel": "cash"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client.post(path, json=body, headers=headers), range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    lines = client.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk).json()
    assert len(lines) == 1


def test_a_closed_account_takes_a_payment_only_to_settle_what_it_owes(client, clerk, engine):
    """Paid 10.00, closed at 20 m³: 7.5 m³ since the opening at 2.61 yuan, 19.58 billed, so
    it owes 9.58. Up to that is taken (no top-up), more is refused (409, nothing kept), and
    once settled it takes nothing; a payment taken before the closing still replays."""
    account = open_account(client, clerk)
    path = f"{API}/accounts/{account['id']}/payments"
    earlier = {**clerk, **key()}
    first = client.post(path, json={"amount_fen": 1_000, "channel": "cash"}, headers=earlier)
    assert first.status_code == 201, first.text
    closed = client.post(
        f"{API}/accounts/{account['id']}/closure",
        json={"final_register": "20.000", "channel": "cash"},
        headers=clerk,
    )
    assert closed.status_code == 200 and closed.json()["billed_fen"] == 1_958, closed.text
    shown = closed.json()
    assert (shown["netted_fen"], shown["netting"], shown["refunded_fen"]) == (0, None, 0)
    assert shown["owed_fen"] == 958
    trail = audited(engine)

    too_much = client.post(path, json={"amount_fen": 959, "channel": "cash"}, headers=key() | clerk)
    error = assert_error(too_much, 409, "conflict")
    assert error["message"] == (
        "account A0001 is closed and owes 9.58 yuan (958 fen): a payment of up to 9.58 yuan "
        "settles it, not 9.59 yuan"
    )
    assert audited(engine) == trail
    part = client.post(path, json={"amount_fen": 500, "channel": "cash"}, headers=key() | clerk)
    assert part.status_code == 201, part.text
    assert (part.json()["amount_fen"], part.json()["top_up_id"]) == (500, None)
    rest = client.post(path, json={"amount_fen": 458, "channel": "wechat"}, headers=key() | clerk)
    assert rest.status_code == 201, rest.text
    balance = client.get(f"{API}/accounts/{account['id']}/balance", headers=clerk).json()
    assert balance["balances"]["prepaid"]["available_fen"] == 0

    settled = audited(engine)
    nothing = client.post(path, json={"amount_fen": 1, "channel": "cash"}, headers=key() | clerk)
    error = assert_error(nothing, 409, "conflict")
    assert error["message"] == "account A0001 is closed: it takes no payment (it owes nothing)"
    assert audited(engine) == settled
    again = client.post(path, json={"amount_fen": 1_000, "channel": "cash"}, headers=earlier)
    assert again.status_code == 201 and again.json() == first.json()
    lines = client.get(f"{API}/accounts/{account['id']}/ledger", headers=clerk).json()
    assert [t["kind"] for t in lines].count("payment") == 3


# -- refunds, adjustments, reversals -------------------------------------------------


def test_refunds_adjustments_and_reversals(client, clerk, auditor):
    account = open_account(client, clerk)
    base = f"{API}/accounts/{account['id']}"
    paid = client.post(
        f"{base}/payments",
        json={"amount_fen": 3_000, "channel": "cash"},
        headers={**clerk, **key()},
    ).json()

    too_much = client.post(
        f"{base}/refunds",
        json={"amount_fen": 3_001, "channel": "cash", "reason": "moving out"},
        headers={**clerk, **key()},
    )
    assert_error(too_much, 409, "insufficient_funds")
    refunded = client.post(
        f"{base}/refunds",
        json={"amount_fen": 1_000, "channel": "cash", "reason": "moving out"},
        headers={**clerk, **key()},
    )
    assert refunded.status_code == 201, refunded.text

    no_reason = client.post(
        f"{base}/adjustments",
        json={"amount_fen": 500, "target": "prepaid"},
        headers={**auditor, **key()},
    )
    assert_error(no_reason, 422, "invalid_request")
    adjusted = client.post(
        f"{base}/adjustments",
        json={"amount_fen": -500, "target": "prepaid", "reason": "double-counted voucher"},
        headers={**auditor, **key()},
    )
    assert adjusted.status_code == 201, adjusted.text
    assert adjusted.json()["credit_account"] == "adjustments"

    reversal_key = key()
    reversed_ = client.post(
        f"{API}/transfers/{paid['id']}/reversal",
        json={"reason": "entered on the wrong account"},
        headers={**auditor, **reversal_key},
    )
    assert reversed_.status_code == 201, reversed_.text
    assert reversed_.json()["reverses"] == paid["id"]
    twice = client.post(
        f"{API}/transfers/{paid['id']}/reversal",
        json={"reason": "again"},
        headers={**auditor, **key()},
    )
    assert_error(twice, 409, "already_reversed")
    unknown = client.post(
        f"{API}/transfers/nope/reversal", json={"reason": "x"}, headers={**auditor, **key()}
    )
    assert_error(unknown, 404, "not_found")

    balance = client.get(f"{base}/balance", headers=auditor).json()["balances"]["prepaid"]
    assert balance["posted_fen"] == 3_000 - 1_000 - 500 - 3_000


# -- every bad input: its status and the one error shape ---------------------------------

PAY = "/accounts/{id}/payments"
BAD = "invalid_request"
REPLACEMENT = {"at": "2020-01-01T00:00:00Z", "old_final_register": "1", "new_comm_no": "9" * 14}
# the account closed first at its final register: at the opening nothing is owed; at 20 m³,
# 7.5 m³ at 2.61 yuan (19.58) are
CLOSED = {"{closed}": "12.500", "{owing}": "20.000"}
PAY_CLOSED, PAY_OWING = "/accounts/{closed}/payments", "/accounts/{owing}/payments"
BAD_INPUTS = [
    ("POST", "/customers", {}, 422, "invalid_request"),
    ("POST", "/customers", {"name": "x", "colour": "red"}, 422, "invalid_request"),
    ("POST", "/customers", {"name": "x" * 101}, 422, "invalid_request"),
    ("POST", "/accounts", {"meter_comm_no": "123"}, 422, "invalid_request"),
    ("POST", "/accounts", {"company_no": "1"}, 422, "invalid_request"),
    ("POST", "/accounts", {"customer_id": 999}, 404, "not_found"),
    ("POST", "/accounts", {"number": "TAKEN"}, 409, "conflict"),
    ("POST", "/accounts", {"meter_comm_no": METER}, 409, "conflict"),
    ("POST", "/accounts", {"tariff_id": "no-such-tariff"}, 404, "not_found"),
    ("POST", "/accounts", {"tariff_id": "../tariffs/x.toml"}, 422, "invalid_request"),
    ("POST", "/accounts", {"billing_mode": "free"}, 422, "invalid_request"),
    ("POST", "/accounts", {"opening_register": 12.5}, 422, "invalid_request"),
    ("POST", "/accounts", {"opening_register": "1.2345"}, 422, "invalid_request"),
    ("POST", "/accounts", {"cutoff_fen": 10}, 422, "invalid_request"),
    ("POST", "/accounts", {"bound_at": "2025-01-01T00:00:00"}, 422, "invalid_request"),
    ("GET", "/accounts/999", None, 404, "not_found"),
    ("GET", "/accounts/abc", None, 422, "invalid_request"),
    ("GET", "/accounts/99999999999", None, 422, "invalid_request"),
    ("GET", "/accounts/999/balance", None, 404, "not_found"),
    ("GET", "/accounts?limit=0", None, 422, "invalid_request"),
    ("PATCH", "/accounts/{id}", {"cutoff_fen": 100}, 422, "invalid_request"),
    ("PATCH", "/accounts/{id}", {"reopen_fen": -500}, 422, "invalid_request"),
    ("PATCH", "/accounts/{id}", {"number": "B1"}, 422, "invalid_request"),
    ("PATCH", "/accounts/999", {"persons": 2}, 404, "not_found"),
    ("PATCH", "/accounts/{id}", {"status": "closed"}, 422, "invalid_request"),
    ("PATCH", "/accounts/{id}", {"status": "active"}, 422, "invalid_request"),
    ("PATCH", "/accounts/999", {"status": "closed"}, 422, "invalid_request"),
    ("POST", PAY, {"amount_fen": 1.5, "channel": "cash"}, 422, BAD),
    ("POST", PAY, {"amount_fen": "100", "channel": "cash"}, 422, BAD),
    ("POST", PAY, {"amount_fen": 0, "channel": "cash"}, 422, BAD),
    ("POST", PAY, {"amount_fen": -5, "channel": "cash"}, 422, BAD),
    ("POST", PAY, {"amount_fen": True, "channel": "cash"}, 422, BAD),
    ("POST", PAY, {"amount_fen": 100, "channel": "a b"}, 422, BAD),
    ("POST", PAY, {"amount_fen": 100}, 422, BAD),
    ("POST", "/accounts/999/payments", {"amount_fen": 100, "channel": "cash"}, 404, "not_found"),
    ("POST", PAY_CLOSED, {"amount_fen": 100, "channel": "cash"}, 409, "conflict"),
    ("POST", PAY_OWING, {"amount_fen": 1_959, "channel": "cash"}, 409, "conflict"),
    ("POST", "/accounts/{id}/meter-replacements", REPLACEMENT, 422, BAD),
    ("POST", "/exceptions/999/resolve", {"resolution": "done"}, 404, "not_found"),
    ("POST", "/exceptions/1/resolve", {"resolution": "   "}, 422, "invalid_request"),
    ("GET", "/exceptions?status=closed", None, 422, "invalid_request"),
    ("GET", "/nowhere", None, 404, "not_found"),
    ("DELETE", "/customers", None, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), BAD_INPUTS)
def test_bad_input_gets_its_status_and_the_error_shape(
    client, clerk, method, path, body, status, code
):
    account = open_account(client, clerk, number="TAKEN")
    for closed, final in CLOSED.items():
        if closed in path:
            closure = {"final_register": final, "channel": "cash"}
            done = client.post(
                f"{API}/accounts/{account['id']}/closure", json=closure, headers=clerk
            )
            assert done.status_code == 200, done.text
            path = path.replace(closed, "{id}")
    if path == "/accounts" and body is not None:
        valid = account_body(account["customer_id"], number="A0009", meter_comm_no="5" * 14)
        body = {**valid, **body}
    response = client.request(
        method,
        API + path.replace("{id}", str(account["id"])),
        json=body,
        headers={**clerk, **key()},
    )
    assert_error(response, status, code)


def test_field_problems_are_listed_with_where_and_why(client, clerk):
    response = client.post(f"{API}/customers", json={"phone": 5}, headers=clerk)
    error = assert_error(response, 422, "invalid_request")
    where = {tuple(d["loc"]) for d in error["details"]}
    assert ("body", "name") in where
    assert ("body", "phone") in where
    assert all(set(d) == {"loc", "message", "type"} for d in error["details"])


def test_malformed_json_is_a_422_in_the_error_shape(client, clerk):
    response = client.post(
        f"{API}/customers",
        content=b"{not json",
        headers={**clerk, "Content-Type": "application/json"},
    )
    assert_error(response, 422, "invalid_request")


def test_no_token_is_401_and_the_wrong_role_403(client, auditor):
    assert_error(client.get(f"{API}/accounts"), 401, "unauthorized")
    assert client.get(f"{API}/accounts").headers["WWW-Authenticate"] == "Bearer"
    bad = {"Authorization": "Bearer not-a-token"}
    assert_error(client.get(f"{API}/accounts", headers=bad), 401, "unauthorized")
    denied = client.post(f"{API}/customers", json={"name": "x"}, headers=auditor)
    assert_error(denied, 403, "forbidden")


# -- exceptions, tariffs, settings, audit ------------------------------------------------


def test_a_clerk_resolves_an_exception_once(client, clerk, auditor, engine):
    account = open_account(client, clerk)
    exception_id = add_exception(engine, account["id"])
    queue = client.get(f"{API}/exceptions", headers=auditor).json()
    assert [e["id"] for e in queue] == [exception_id]

    done = client.post(
        f"{API}/exceptions/{exception_id}/resolve",
        json={"resolution": "meter replaced on site; replacement recorded"},
        headers=clerk,
    )
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["resolved_by"]) == ("resolved", "clerk")
    twice = client.post(
        f"{API}/exceptions/{exception_id}/resolve", json={"resolution": "again"}, headers=clerk
    )
    assert_error(twice, 409, "conflict")
    assert client.get(f"{API}/exceptions", headers=clerk).json() == []
    resolved = client.get(f"{API}/exceptions", params={"status": "resolved"}, headers=clerk)
    assert [e["id"] for e in resolved.json()] == [exception_id]


def test_tariffs_are_listed_shown_and_reloaded(client, admin, clerk):
    listed = client.get(f"{API}/tariffs", headers=clerk).json()
    assert "beijing-residential" in {t["id"] for t in listed}
    shown = client.get(f"{API}/tariffs/beijing-residential", headers=clerk).json()
    assert shown["history"][0]["prices"]
    assert_error(client.get(f"{API}/tariffs/nope", headers=clerk), 404, "not_found")
    reloaded = client.post(f"{API}/tariffs/reload", headers=admin)
    assert reloaded.status_code == 200
    assert {t["id"] for t in reloaded.json()} == {t["id"] for t in listed}


def test_settings_are_shown_with_secrets_masked(client, admin):
    shown = client.get(f"{API}/settings", headers=admin).json()
    assert shown["app"]["secret_key"] != "change-me-demo-only"
    assert "change-me" not in str(shown)
    assert "496d1bac094f11e79d9c0a0027000010" not in str(shown)  # the push key (issue 11)
    assert shown["push"]["keys"] == {"1001": "********"}
    assert shown["staff"]["token_ttl_minutes"] == 60


def test_a_database_password_never_leaves():
    settings = Settings(database=DatabaseSettings(url="postgresql://billing:s3cr3t@db:5432/gas"))
    shown = masked(settings)
    assert "s3cr3t" not in str(shown)
    assert shown["database"]["url"].startswith("postgresql://billing:")


def test_the_auditor_reads_the_trail_and_verifies_it(client, clerk, auditor):
    open_account(client, clerk)
    entries = client.get(f"{API}/audit", headers=auditor).json()
    assert {"customer.create", "account.open", "auth.login"} <= {e["action"] for e in entries}
    assert all(isinstance(e["seq"], int) for e in entries)
    opened = next(e for e in entries if e["action"] == "account.open")
    assert opened["actor"] == "clerk"
    assert opened["after"]["meter"] == METER
    verified = client.get(f"{API}/audit/verify", headers=auditor).json()
    assert verified["ok"] is True
    assert verified["entries"] >= len(entries)
    assert_error(client.get(f"{API}/audit", headers=clerk), 403, "forbidden")


# -- the composition root ----------------------------------------------------------------


def test_the_app_refuses_the_placeholder_secret_outside_the_demo(db_url):
    production = Settings(
        app=AppSettings(environment="production"), database=DatabaseSettings(url=db_url)
    )
    with pytest.raises(ConfigError, match="secret_key"):
        create_app(production)
    no_audit_key = Settings(
        app=AppSettings(environment="production", secret_key="x" * 40),
        database=DatabaseSettings(url=db_url),
    )
    with pytest.raises(ConfigError, match="audit_key"):
        create_app(no_audit_key)
    strong = Settings(
        app=AppSettings(environment="production", secret_key="x" * 40, audit_key="y" * 40),
        database=DatabaseSettings(url=db_url),
    )
    create_app(strong)  # builds; its engine is made lazily and never connected


def test_outside_the_staff_api_fastapi_answers_as_usual(client):
    assert client.get("/openapi.json").status_code == 200
    assert client.get("/nowhere").json() == {"detail": "Not Found"}


def test_an_unknown_tariff_is_404_naming_the_known_ones_and_not_the_servers_directory(
    client, clerk
):
    account = open_account(client, clerk, number="TAKEN")
    body = account_body(
        account["customer_id"], number="A0009", meter_comm_no="5" * 14, tariff_id="no-such"
    )
    error = assert_error(client.post(f"{API}/accounts", json=body, headers=clerk), 404, "not_found")
    assert "no tariff 'no-such'" in error["message"] and "beijing-residential" in error["message"]
    assert "/" not in error["message"]
