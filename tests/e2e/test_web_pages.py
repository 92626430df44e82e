"""The staff pages in-process: sessions, CSRF, the policy table, the API's input rules, audit.

What each bad request gets: no CSRF token → 403 and nothing stored; no
session → a redirect to the login page; a role the policy table does not
allow → 403; an amount the API would refuse → 422 with the reason on the
form and nothing stored.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.policy import POLICY, UI
from gasbill.service import ledger
from gasbill.service.accounts import create_customer
from tests.e2e.staff_helpers import PASSWORD, account_body, make_target_user

pytestmark = pytest.mark.db

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/ui/login") -> str:
    found = CSRF.search(client.get(path).text)
    assert found is not None
    return found.group(1)


def web_login(client: TestClient, username: str) -> None:
    token = csrf_of(client)
    answer = client.post(
        "/ui/login",
        data={"csrf_token": token, "username": username, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text


@pytest.fixture
def account_id(engine, client, clerk) -> int:
    customer = create_customer(UnitOfWork(engine), name="=HYPERLINK(1)", actor="setup")
    body = account_body(customer.id, number="+A0001")
    answer = client.post("/api/v1/accounts", json=body, headers=clerk)
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def test_login_gives_a_strict_httponly_cookie_and_secure_over_tls(app) -> None:
    with TestClient(app, base_url="https://testserver") as client:
        token = csrf_of(client)
        answer = client.post(
            "/ui/login",
            data={"csrf_token": token, "username": "clerk", "password": PASSWORD},
            follow_redirects=False,
        )
    cookie = next(v for k, v in answer.headers.multi_items() if "gasbill_session=" in v)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" in cookie
    assert "Max-Age=3600" in cookie  # the token's lifetime (60 minutes in these tests)
    assert answer.headers["location"] == "/ui/customers"


def test_a_post_without_the_csrf_token_is_refused(client, engine) -> None:
    web_login(client, "clerk")
    answer = client.post("/ui/customers/new", data={"name": "王五"})
    assert answer.status_code == 403
    bad = client.post("/ui/customers/new", data={"name": "王五", "csrf_token": "forged"})
    assert bad.status_code == 403
    with UnitOfWork(engine) as uow:
        assert not uow.accounts.customers(search="王五")


def test_without_a_session_pages_send_to_the_login_and_never_elsewhere(client) -> None:
    answer = client.get("/ui/day-end", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=/ui/day-end"
    page = client.get("/ui/login?next=//evil.example/x").text
    assert 'value="/ui/"' in page  # the next page is ours only


def test_a_clerk_is_refused_an_auditors_page_and_not_offered_it(client) -> None:
    web_login(client, "clerk")
    assert client.get("/ui/reconciliation").status_code == 403
    assert client.get("/ui/admin/settings").status_code == 403
    nav = client.get("/ui/customers").text
    assert "/ui/reconciliation" not in nav
    assert "/ui/day-end" in nav


def test_sessions_expire_and_logout_ends_them(client, clock) -> None:
    web_login(client, "clerk")
    assert client.get("/ui/customers", follow_redirects=False).status_code == 200
    clock.advance(minutes=61)
    assert client.get("/ui/customers", follow_redirects=False).status_code == 303
    web_login(client, "clerk")
    token = csrf_of(client, "/ui/customers")
    client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert client.get("/ui/customers", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("amount", ["1.234", "-5", "0", "abc", "1e3", "5000.01"])  # over [money]
def test_a_payment_the_api_would_refuse_is_refused_and_nothing_stored(
    client, engine, account_id, amount
) -> None:
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    answer = client.post(
        f"/ui/accounts/{account_id}/pay",
        data={"csrf_token": token, "amount": amount, "channel": "cash", "key": "k1"},
    )
    assert answer.status_code == 422
    assert 'role="alert"' in answer.text
    assert ledger.account_transfers(UnitOfWork(engine), account_id) == []


def test_a_payment_gives_a_receipt_in_capitals_once_and_is_audited(
    client, engine, account_id
) -> None:
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    form = {"csrf_token": token, "amount": "100.50", "channel": "wechat", "key": "same-key"}
    first = client.post(f"/ui/accounts/{account_id}/pay", data=form, follow_redirects=False)
    again = client.post(f"/ui/accounts/{account_id}/pay", data=form, follow_redirects=False)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]  # a double click pays once
    receipt = client.get(first.headers["location"]).text
    assert "壹佰元伍角整" in receipt
    assert "100.50" in receipt
    assert len(ledger.account_transfers(UnitOfWork(engine), account_id)) == 1
    with UnitOfWork(engine) as uow:
        entry = uow.audit.latest(1)[0]
    assert (entry.action, entry.actor) == ("ledger.payment", "clerk")


def test_exports_neutralise_formula_cells(client, account_id) -> None:
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    client.post(
        f"/ui/accounts/{account_id}/pay",
        data={"csrf_token": token, "amount": "5", "channel": "cash", "key": "k-export"},
    )
    answer = client.get("/ui/exports/payments?fmt=csv")
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[1][2] == "'+A0001"  # the account number, made inert
    assert rows[1][5] == "5.00"
    xlsx = client.get("/ui/exports/ledger?fmt=xlsx")
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")


def test_docs_load_nothing_from_outside(client) -> None:
    page = client.get("/docs").text
    assert "/ui/static/swagger/swagger-ui-bundle.js" in page
    assert not re.search(r"(src|href)=\"https?://", page)
    assert client.get("/ui/static/swagger/swagger-ui-bundle.js").status_code == 200


def test_the_language_is_chinese_by_default_and_remembered(client) -> None:
    assert "登录" in client.get("/ui/login").text
    client.get("/ui/lang/en?next=/ui/login")
    assert "Log in" in client.get("/ui/login").text


def test_every_page_answers_every_role_as_the_policy_table_says(
    app, client, engine, account_id
) -> None:
    """Nobody is sent to the login; a role the table does not allow gets 403; others get in."""
    web_login(client, "clerk")
    token = csrf_of(client, "/ui/customers")
    form = {"csrf_token": token, "amount": "1", "channel": "cash", "key": "walk"}
    paid = client.post(f"/ui/accounts/{account_id}/pay", data=form, follow_redirects=False)
    transfer_id = paid.headers["location"].rsplit("/", 1)[-1]
    values = {
        "account_id": account_id,
        "transfer_id": transfer_id,
        "command_id": 1,
        "exception_id": 1,
        "conflict_id": 1,
        "user_id": 1,
        "action": "none",  # an unknown action: past the role check, changes nothing
        "language": "en",
    }
    pages = sorted(
        (k for k in POLICY if k[1].startswith(UI) and not POLICY[k].public),
        key=lambda k: k == ("POST", f"{UI}/logout"),
    )
    for role in (None, "clerk", "auditor", "admin"):
        client.cookies.clear()
        if role:
            web_login(client, role)
        token = csrf_of(client)
        for method, template in pages:
            access = POLICY[(method, template)]
            path = template.format(**values)
            answer = client.request(
                method,
                path,
                data={"csrf_token": token} if method == "POST" else None,
                follow_redirects=False,
            )
            where = f"{method} {template} as {role or 'nobody'}: {answer.status_code}"
            to_login = answer.headers.get("location", "").startswith(f"{UI}/login")
            if role is None:
                assert answer.status_code == 303 and to_login, where
            elif template == f"{UI}/logout":
                assert answer.status_code == 303 and to_login, where  # logged out: to the login
            elif access.allows(role):
                assert answer.status_code not in (401, 403) and not to_login, where
            else:
                assert answer.status_code == 403, where


def _web_login_answer(client: TestClient, username: str, password: str):
    client.cookies.clear()
    token = csrf_of(client)
    data = {"csrf_token": token, "username": username, "password": password}
    return client.post("/ui/login", data=data, follow_redirects=False)


def test_an_admin_unlocks_a_user_and_resets_a_password_in_the_pages(
    app, client, engine, passwords
) -> None:
    """The API's use cases (credentials.unlock_user, reset_password), audited as the API's."""
    target = make_target_user(engine, passwords)
    limit = app.state.gasbill.limits.max_failures
    for _ in range(limit + 1):
        _web_login_answer(client, "target", "wrong-password")
    assert _web_login_answer(client, "target", PASSWORD).status_code == 429
    web_login(client, "admin")
    page = client.get("/ui/admin/users").text
    assert f'/ui/admin/users/{target}/unlock"' in page
    token = csrf_of(client, "/ui/admin/users")
    unlocked = client.post(
        f"/ui/admin/users/{target}/unlock", data={"csrf_token": token}, follow_redirects=False
    )
    assert unlocked.status_code == 303
    short = client.post(
        f"/ui/admin/users/{target}/password", data={"csrf_token": token, "password": "short"}
    )
    assert short.status_code == 422  # the API's rule: 8 to 1024 characters
    reset = client.post(
        f"/ui/admin/users/{target}/password",
        data={"csrf_token": token, "password": "a-new-password-1"},
        follow_redirects=False,
    )
    assert reset.status_code == 303
    with UnitOfWork(engine) as uow:
        actions = [(e.action, e.actor) for e in uow.audit.latest(2)]
    assert set(actions) == {("user.unlock", "admin"), ("user.password_reset", "admin")}
    assert _web_login_answer(client, "target", PASSWORD).status_code == 401
    assert _web_login_answer(client, "target", "a-new-password-1").status_code == 303


def test_every_staff_member_changes_their_own_password_in_the_pages(client) -> None:
    web_login(client, "auditor")
    token = csrf_of(client, "/ui/me/password")
    form = {"csrf_token": token, "current": PASSWORD, "new": "another-pw-1", "again": "x"}
    assert client.post("/ui/me/password", data=form).status_code == 422  # the two differ
    wrong = {**form, "current": "not-my-password", "again": "another-pw-1"}
    assert client.post("/ui/me/password", data=wrong).status_code == 422
    right = {**form, "again": "another-pw-1"}
    changed = client.post("/ui/me/password", data=right, follow_redirects=False)
    assert changed.status_code == 303
    assert client.get("/ui/me/password").status_code == 200  # this session stays
    assert _web_login_answer(client, "auditor", PASSWORD).status_code == 401
    assert _web_login_answer(client, "auditor", "another-pw-1").status_code == 303


def test_closing_an_account_in_the_pages_is_the_apis_closure(client, engine, account_id) -> None:
    """Final reading, the credit paid back, the account closed; a second close is refused."""
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    paid = {"csrf_token": token, "amount": "30.00", "channel": "cash", "key": "before-close"}
    client.post(f"/ui/accounts/{account_id}/pay", data=paid, follow_redirects=False)
    assert "final_register" in client.get(f"/ui/accounts/{account_id}/close").text
    form = {"csrf_token": token, "final_register": "12.5", "channel": "cash"}
    closed = client.post(f"/ui/accounts/{account_id}/close", data=form, follow_redirects=False)
    assert closed.status_code == 303, closed.text
    with UnitOfWork(engine) as uow:
        account = uow.accounts.get(account_id)
        assert account is not None and account.status == "closed"
        assert uow.audit.latest(1)[0].action == "account.close"
    kinds = [t.kind for t in ledger.account_transfers(UnitOfWork(engine), account_id)]
    assert "refund" in kinds, kinds
    again = client.post(f"/ui/accounts/{account_id}/close", data=form)
    assert again.status_code == 422


def test_a_closed_account_that_owes_takes_in_the_pages_only_what_it_owes(
    client, engine, account_id
) -> None:
    """Closed at 20 m³ with nothing paid: 7.5 m³ at 2.61 yuan, 19.58 owed. The account page
    offers a payment again (not once settled), the form says how much, more is refused
    with the reason and nothing stored, the debt itself is taken."""
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    form = {"csrf_token": token, "final_register": "20", "channel": "cash"}
    closed = client.post(f"/ui/accounts/{account_id}/close", data=form, follow_redirects=False)
    assert closed.status_code == 303, closed.text
    assert 'id="pay"' in client.get(f"/ui/accounts/{account_id}").text
    assert "最多 19.58 元" in client.get(f"/ui/accounts/{account_id}/pay").text  # zh by default
    kept = ledger.account_transfers(UnitOfWork(engine), account_id)

    pay = {"csrf_token": token, "amount": "19.59", "channel": "cash", "key": "late-1"}
    refused = client.post(f"/ui/accounts/{account_id}/pay", data=pay)
    assert refused.status_code == 422
    assert "owes 19.58 yuan (1958 fen): a payment of up to 19.58 yuan settles it" in refused.text
    assert ledger.account_transfers(UnitOfWork(engine), account_id) == kept
    settled = client.post(
        f"/ui/accounts/{account_id}/pay",
        data={**pay, "amount": "19.58", "key": "late-2"},
        follow_redirects=False,
    )
    assert settled.status_code == 303, settled.text
    assert 'id="pay"' not in client.get(f"/ui/accounts/{account_id}").text


def test_a_corrected_reading_is_dismissed_by_a_clerk_and_accepted_by_an_auditor_in_the_pages(
    client, engine, account_id
) -> None:
    """The exceptions page lists corrections beside the stored value; each role its action."""
    from tests.e2e.test_conflicts_api import push

    push(engine, "2025-01-02", "14.0")
    push(engine, "2025-01-03", "16.0")
    push(engine, "2025-01-02", "14.5")  # a correction
    push(engine, "2025-01-03", "99.0")  # another
    web_login(client, "clerk")
    page = client.get("/ui/exceptions").text
    assert len(re.findall(r"conflicts/\d+/dismiss", page)) == 2, page[-3000:]
    assert "/accept" not in page  # accepting moves money
    token = csrf_of(client, "/ui/exceptions")
    first, second = re.findall(r"/ui/exceptions/conflicts/(\d+)/dismiss", page)
    done = client.post(
        f"/ui/exceptions/conflicts/{second}/dismiss",
        data={"csrf_token": token, "reason": "a misread"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    refused = client.post(
        f"/ui/exceptions/conflicts/{first}/accept", data={"csrf_token": token, "reason": "x"}
    )
    assert refused.status_code == 403
    client.cookies.clear()
    web_login(client, "auditor")
    token = csrf_of(client, "/ui/exceptions")
    accepted = client.post(
        f"/ui/exceptions/conflicts/{first}/accept",
        data={"csrf_token": token, "reason": "the platform corrected it"},
        follow_redirects=False,
    )
    assert accepted.status_code == 303, accepted.text
    with UnitOfWork(engine) as uow:
        assert uow.audit.latest(1)[0].action == "push_conflict.accept"
    assert "/accept" not in client.get("/ui/exceptions").text


def test_an_admin_deactivates_and_activates_a_user_in_the_pages(client, engine, passwords) -> None:
    target = make_target_user(engine, passwords)
    web_login(client, "admin")
    token = csrf_of(client, "/ui/admin/users")
    gone = client.post(
        f"/ui/admin/users/{target}/deactivate", data={"csrf_token": token}, follow_redirects=False
    )
    assert gone.status_code == 303
    page = client.get("/ui/admin/users").text
    assert f'/ui/admin/users/{target}/activate"' in page  # offered only to the inactive
    assert _web_login_answer(client, "target", PASSWORD).status_code == 401
    web_login(client, "admin")
    back = client.post(
        f"/ui/admin/users/{target}/activate",
        data={"csrf_token": csrf_of(client, "/ui/admin/users")},
        follow_redirects=False,
    )
    assert back.status_code == 303
    with UnitOfWork(engine) as uow:
        actions = [(e.action, e.actor) for e in uow.audit.latest(5) if e.action.startswith("user.")]
    assert actions[:2] == [("user.activate", "admin"), ("user.deactivate", "admin")]
    assert _web_login_answer(client, "target", PASSWORD).status_code == 303


def test_a_statement_shows_the_month_s_payment_and_balance(client, account_id) -> None:
    web_login(client, "clerk")
    token = csrf_of(client, f"/ui/accounts/{account_id}/pay")
    form = {"csrf_token": token, "amount": "100.50", "channel": "cash", "key": "k-statement"}
    assert client.post(f"/ui/accounts/{account_id}/pay", data=form).status_code == 200
    page = client.get(f"/ui/accounts/{account_id}/statement")
    assert page.status_code == 200, page.text
    assert page.text.count("100.50") >= 2  # the payment, and the closing balance
