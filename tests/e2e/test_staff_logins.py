"""Logins that protect without locking out the office (issue 11): limits per username and per
address counted apart and atomically, a success clearing only its own name, the admin's unlock
and reset, the user's own change, and X-Forwarded-For believed only from configured proxies."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.app import create_app
from gasbill.api.security import HmacTokens, TrustedProxies
from gasbill.cli import app as cli_app
from gasbill.service.staff import LoginLimits, LoginRefused, TooManyAttempts
from gasbill.service.staff import login as login_use
from tests.e2e.staff_helpers import (
    API,
    PASSWORD,
    FakeClock,
    assert_error,
    auth,
    staff_settings,
)

pytestmark = pytest.mark.db


def attempt(client, username, password="wrong password", forwarded=None):
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    return client.post(
        f"{API}/auth/login", json={"username": username, "password": password}, headers=headers
    )


@pytest.fixture
def office(db_url, engine, catalog, clock, passwords, user_ids):
    """An app whose limits are 3 per username and 6 per address."""
    settings = staff_settings(db_url, login_max_failures_per_client=6)
    app = create_app(settings, engine=engine, catalog=catalog, clock=clock, passwords=passwords)
    with TestClient(app) as client:
        yield client


def test_one_users_failures_do_not_lock_out_the_others_behind_the_same_address(office):
    for _ in range(3):
        assert attempt(office, "clerk").status_code == 401
    assert_error(attempt(office, "clerk", PASSWORD), 429, "too_many_attempts")
    # the auditor and the admin, from the same address, still log in
    assert attempt(office, "auditor", PASSWORD).status_code == 200
    assert attempt(office, "admin", PASSWORD).status_code == 200


def test_an_address_guessing_many_names_is_held_back(office):
    for name in ("a1", "a2", "a3", "a4", "a5", "a6"):
        assert attempt(office, name).status_code == 401
    limited = attempt(office, "clerk", PASSWORD)
    assert_error(limited, 429, "too_many_attempts")
    assert 0 < int(limited.headers["Retry-After"]) <= 600


def test_a_success_clears_only_its_own_usernames_count(office):
    """One valid login no longer buys unlimited guesses at someone else's password."""
    for _ in range(2):
        assert attempt(office, "admin").status_code == 401
        assert attempt(office, "clerk", PASSWORD).status_code == 200
    assert attempt(office, "admin").status_code == 401
    assert_error(attempt(office, "admin", PASSWORD), 429, "too_many_attempts")
    # the clerk's own count did start afresh each time
    for _ in range(2):
        assert attempt(office, "clerk").status_code == 401
    assert attempt(office, "clerk", PASSWORD).status_code == 200


def test_the_window_passes(office, clock):
    for _ in range(3):
        attempt(office, "clerk")
    assert attempt(office, "clerk", PASSWORD).status_code == 429
    clock.advance(minutes=10, seconds=1)
    assert attempt(office, "clerk", PASSWORD).status_code == 200


class CountingPasswords:
    """The real (cheap) argon2 check, counted."""

    def __init__(self, inner) -> None:
        self.inner, self.checks, self._lock = inner, 0, threading.Lock()

    def hash(self, password):
        return self.inner.hash(password)

    def verify(self, password_hash, password):
        with self._lock:
            self.checks += 1
        return self.inner.verify(password_hash, password)

    def needs_rehash(self, password_hash):
        return self.inner.needs_rehash(password_hash)


def test_thirty_concurrent_wrong_passwords_get_at_most_the_limit_of_checks(
    engine, passwords, user_ids
):
    counting = CountingPasswords(passwords)
    limits = LoginLimits(5, timedelta(minutes=15), 100)
    clock = FakeClock()

    def one(i: int) -> str:
        try:
            login_use(
                UnitOfWork(engine),
                username="clerk",
                password=f"wrong {i}",
                client=f"10.0.0.{i}",
                passwords=counting,
                tokens=HmacTokens("k" * 32),
                ttl=timedelta(hours=1),
                limits=limits,
                now=clock(),
            )
        except LoginRefused:
            return "refused"
        except TooManyAttempts:
            return "limited"
        return "in"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(one, range(30)))
    assert counting.checks <= 5
    assert outcomes.count("refused") == counting.checks
    assert outcomes.count("limited") == 30 - counting.checks


# -- the admin's unlock and reset; the user's own change --------------------------------------


def test_the_admin_unlocks_a_user_over_the_api(office, admin, user_ids, engine):
    for _ in range(3):
        attempt(office, "clerk")
    assert attempt(office, "clerk", PASSWORD).status_code == 429
    unlocked = office.post(f"{API}/users/{user_ids['clerk']}/unlock", headers=admin)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json() == {"id": user_ids["clerk"], "username": "clerk", "failures_cleared": 4}
    assert attempt(office, "clerk", PASSWORD).status_code == 200
    clerk = auth(office, "clerk")
    assert_error(office.post(f"{API}/users/1/unlock", headers=clerk), 403, "forbidden")
    assert_error(office.post(f"{API}/users/999/unlock", headers=admin), 404, "not_found")
    with UnitOfWork(engine) as uow:
        assert ("admin", "user.unlock") in [(e.actor, e.action) for e in uow.audit.entries()]


def test_the_admin_resets_a_password(office, admin, user_ids, engine):
    clerk = auth(office, "clerk")
    reset = office.put(
        f"{API}/users/{user_ids['clerk']}/password",
        json={"password": "a brand new one"},
        headers=admin,
    )
    assert reset.status_code == 200, reset.text
    assert "password" not in reset.text
    assert_error(office.get(f"{API}/me", headers=clerk), 401, "unauthorized")
    assert_error(attempt(office, "clerk", PASSWORD), 401, "login_failed")
    assert attempt(office, "clerk", "a brand new one").status_code == 200
    short = office.put(
        f"{API}/users/{user_ids['clerk']}/password", json={"password": "short"}, headers=admin
    )
    assert_error(short, 422, "invalid_request")
    with UnitOfWork(engine) as uow:
        entries = list(uow.audit.entries())
    assert ("admin", "user.password_reset") in [(e.actor, e.action) for e in entries]
    assert all("argon2" not in e.after for e in entries)


def test_staff_change_their_own_password(office, engine):
    here = auth(office, "auditor")
    elsewhere = auth(office, "auditor")
    wrong = office.put(
        f"{API}/me/password",
        json={"current_password": "not it", "new_password": "my new password"},
        headers=here,
    )
    assert_error(wrong, 403, "wrong_password")
    changed = office.put(
        f"{API}/me/password",
        json={"current_password": PASSWORD, "new_password": "my new password"},
        headers=here,
    )
    assert changed.status_code == 204, changed.text
    assert office.get(f"{API}/me", headers=here).status_code == 200  # this session stays
    assert_error(office.get(f"{API}/me", headers=elsewhere), 401, "unauthorized")
    assert_error(attempt(office, "auditor", PASSWORD), 401, "login_failed")
    assert attempt(office, "auditor", "my new password").status_code == 200
    with UnitOfWork(engine) as uow:
        actions = [(e.actor, e.action) for e in uow.audit.entries()]
    assert ("auditor", "user.password_change") in actions
    assert ("auditor", "user.password_change_refused") in actions


def test_wrong_current_passwords_count_against_the_limit(office):
    here = auth(office, "clerk")
    body = {"current_password": "not it", "new_password": "my new password"}
    for _ in range(3):
        assert office.put(f"{API}/me/password", json=body, headers=here).status_code == 403
    limited = office.put(f"{API}/me/password", json=body, headers=here)
    assert_error(limited, 429, "too_many_attempts")


# -- the same from a terminal ----------------------------------------------------------------


@pytest.fixture
def config(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.delenv("GASBILL_DATABASE__URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n[staff]\nlogin_max_failures = 3\n'
        "login_window_minutes = 10\n",
        encoding="utf-8",
    )
    return str(path)


def test_unlock_reset_and_change_from_the_cli(office, config, engine):
    runner = CliRunner()
    for _ in range(3):
        attempt(office, "clerk")
    assert attempt(office, "clerk", PASSWORD).status_code == 429
    unlocked = runner.invoke(cli_app, ["user", "unlock", "clerk", "--config", config])
    assert unlocked.exit_code == 0, unlocked.output
    assert "4 failed logins cleared" in unlocked.stdout
    assert attempt(office, "clerk", PASSWORD).status_code == 200

    reset = runner.invoke(
        cli_app,
        ["user", "password", "clerk", "--password-stdin", "--config", config],
        input="set by the admin\n",
    )
    assert reset.exit_code == 0, reset.output
    assert attempt(office, "clerk", "set by the admin").status_code == 200

    changed = runner.invoke(
        cli_app,
        ["user", "change-password", "clerk", "--password-stdin", "--config", config],
        input="set by the admin\nchosen by the clerk\n",
    )
    assert changed.exit_code == 0, changed.output
    assert attempt(office, "clerk", "chosen by the clerk").status_code == 200
    wrong = runner.invoke(
        cli_app,
        ["user", "change-password", "clerk", "--password-stdin", "--config", config],
        input="not it at all\nsomething else\n",
    )
    assert wrong.exit_code == 2
    assert "current password is wrong" in wrong.stderr
    nobody = runner.invoke(cli_app, ["user", "unlock", "nobody", "--config", config])
    assert nobody.exit_code == 2

    for name in ("x1", "x2"):
        attempt(office, name)
    address = runner.invoke(
        cli_app, ["user", "unlock", "--address", "testclient", "--config", config]
    )
    assert address.exit_code == 0, address.output
    with UnitOfWork(engine) as uow:
        actions = {e.action for e in uow.audit.entries()}
    assert {"user.unlock", "user.password_reset", "user.password_change"} <= actions
    assert "auth.unlock_address" in actions


# -- X-Forwarded-For ---------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_unless_the_proxy_is_configured(
    db_url, engine, catalog, clock, passwords, user_ids
):
    plain = create_app(
        staff_settings(db_url, login_max_failures_per_client=3),
        engine=engine,
        catalog=catalog,
        clock=clock,
        passwords=passwords,
    )
    with TestClient(plain, client=("127.0.0.1", 40000)) as client:
        for i in range(3):
            attempt(client, f"n{i}", forwarded=f"192.0.2.{i}")  # spoofed: one address counted
        assert attempt(client, "clerk", PASSWORD, forwarded="192.0.2.99").status_code == 429


def test_behind_a_configured_proxy_the_forwarded_address_is_counted(
    db_url, engine, catalog, clock, passwords, user_ids
):
    settings = staff_settings(db_url, login_max_failures_per_client=3)
    settings = settings.model_copy(
        update={"staff": settings.staff.model_copy(update={"trusted_proxies": ("10.0.0.0/8",)})}
    )
    app = create_app(settings, engine=engine, catalog=catalog, clock=clock, passwords=passwords)
    with TestClient(app, client=("10.1.2.3", 40000)) as client:
        for i in range(3):
            attempt(client, f"n{i}", forwarded="203.0.113.7")
        assert attempt(client, "clerk", PASSWORD, forwarded="203.0.113.7").status_code == 429
        # another office behind the same proxy is not held back
        assert attempt(client, "clerk", PASSWORD, forwarded="198.51.100.4").status_code == 200


def test_trusted_proxies_take_the_nearest_untrusted_hop():
    proxies = TrustedProxies.of(("10.0.0.0/8", "192.168.1.1"))
    assert proxies.client("203.0.113.9", ["1.2.3.4"]) == "203.0.113.9"  # not a proxy
    assert proxies.client("10.0.0.2", ["1.2.3.4, 198.51.100.4"]) == "198.51.100.4"
    assert proxies.client("10.0.0.2", ["1.2.3.4", "198.51.100.4, 192.168.1.1"]) == "198.51.100.4"
    assert proxies.client("10.0.0.2", []) == "10.0.0.2"
    assert proxies.client("10.0.0.2", ["junk, 10.0.0.7"]) == "10.0.0.7"
    assert TrustedProxies.of(()).client("127.0.0.1", ["1.2.3.4"]) == "127.0.0.1"
