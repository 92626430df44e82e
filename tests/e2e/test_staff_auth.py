"""Logins, tokens and staff users over HTTP: expiry, logout, rate limiting, the admin's changes."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from gasbill.adapters.db.uow import UnitOfWork
from tests.e2e.staff_helpers import (
    API,
    assert_error,
    auth,
    login,
)

pytestmark = pytest.mark.db

# -- logins and tokens ---------------------------------------------------------------


def test_login_gives_a_bearer_token_that_expires(client, clock):
    response = login(client, "clerk")
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = client.get(f"{API}/me", headers=headers)
    assert me.json()["username"] == "clerk"
    assert me.json()["role"] == "clerk"

    clock.advance(minutes=59)
    assert client.get(f"{API}/me", headers=headers).status_code == 200
    clock.advance(minutes=1)
    assert_error(client.get(f"{API}/me", headers=headers), 401, "unauthorized")


def test_a_token_stops_working_after_logout(client, clerk):
    assert client.post(f"{API}/auth/logout", headers=clerk).status_code == 204
    assert_error(client.get(f"{API}/me", headers=clerk), 401, "unauthorized")


def test_tokens_are_stored_only_as_keyed_digests(client, engine):
    token = login(client, "clerk").json()["access_token"]
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT token_hash FROM api_token")).scalars().all()
    assert token not in stored
    assert all(len(h) == 64 for h in stored)


def test_a_wrong_password_is_401_and_audited(client, engine):
    assert_error(login(client, "clerk", "wrong password"), 401, "login_failed")
    assert_error(login(client, "nobody", "wrong password"), 401, "login_failed")
    with UnitOfWork(engine) as uow:
        actions = [(e.actor, e.action) for e in uow.audit.entries()]
    assert ("clerk", "auth.login_failed") in actions
    assert ("nobody", "auth.login_failed") in actions


def test_failed_logins_are_rate_limited_by_username(client, clock):
    for _ in range(3):
        assert login(client, "clerk", "wrong password").status_code == 401
    limited = login(client, "clerk")
    assert_error(limited, 429, "too_many_attempts")
    assert int(limited.headers["Retry-After"]) > 0
    # the username only: others behind the same address still log in (test_staff_logins.py)
    assert login(client, "auditor").status_code == 200
    clock.advance(minutes=10, seconds=1)
    assert login(client, "clerk").status_code == 200


def test_a_successful_login_starts_the_count_afresh(client):
    for _ in range(2):
        assert login(client, "clerk", "wrong password").status_code == 401
    assert login(client, "clerk").status_code == 200
    for _ in range(2):
        assert login(client, "clerk", "wrong password").status_code == 401
    assert login(client, "clerk").status_code == 200


# -- users -----------------------------------------------------------------------------


def test_the_admin_manages_users_and_every_change_is_audited(client, admin, engine):
    made = client.post(
        f"{API}/users",
        json={"username": "li.na", "password": "a long password", "role": "clerk"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    user_id = made.json()["id"]
    assert "password" not in made.text
    assert login(client, "li.na", "a long password").status_code == 200

    again = client.post(
        f"{API}/users",
        json={"username": "li.na", "password": "another password", "role": "clerk"},
        headers=admin,
    )
    assert_error(again, 409, "conflict")
    short = client.post(
        f"{API}/users", json={"username": "x", "password": "short", "role": "clerk"}, headers=admin
    )
    assert_error(short, 422, "invalid_request")

    promoted = client.put(f"{API}/users/{user_id}/role", json={"role": "auditor"}, headers=admin)
    assert promoted.json()["role"] == "auditor"
    gone = client.post(f"{API}/users/{user_id}/deactivate", headers=admin)
    assert gone.json()["active"] is False
    assert_error(login(client, "li.na", "a long password"), 401, "login_failed")
    back = client.post(f"{API}/users/{user_id}/activate", headers=admin)
    assert back.status_code == 200 and back.json()["active"] is True
    assert login(client, "li.na", "a long password").status_code == 200
    assert_error(client.post(f"{API}/users/99999/activate", headers=admin), 404, "not_found")

    with UnitOfWork(engine) as uow:
        entries = [e for e in uow.audit.entries() if e.entity == "staff_user"]
    actions = [(e.actor, e.action) for e in entries if e.entity_id == str(user_id)]
    assert ("admin", "user.create") in actions
    assert ("admin", "user.role") in actions
    assert ("admin", "user.deactivate") in actions
    assert ("admin", "user.activate") in actions
    assert all("password" not in e.after for e in entries)


def test_the_last_admin_cannot_be_removed(client, admin, user_ids):
    gone = client.post(f"{API}/users/{user_ids['admin']}/deactivate", headers=admin)
    assert_error(gone, 409, "conflict")
    demoted = client.put(
        f"{API}/users/{user_ids['admin']}/role", json={"role": "clerk"}, headers=admin
    )
    assert_error(demoted, 409, "conflict")


def test_with_two_active_admins_either_may_go_but_not_both(client, admin, user_ids):
    made = client.post(
        f"{API}/users",
        json={"username": "admin2", "password": "a long password", "role": "admin"},
        headers=admin,
    )
    second = made.json()["id"]
    gone = client.post(f"{API}/users/{user_ids['admin']}/deactivate", headers=admin)
    assert gone.status_code == 200, gone.text
    assert gone.json()["active"] is False
    other = auth(client, "admin2", "a long password")
    last = client.post(f"{API}/users/{second}/deactivate", headers=other)
    assert_error(last, 409, "conflict")
    demoted = client.put(f"{API}/users/{second}/role", json={"role": "auditor"}, headers=other)
    assert_error(demoted, 409, "conflict")


def test_a_deactivated_users_tokens_stop_working(client, admin, clerk, user_ids):
    assert client.get(f"{API}/me", headers=clerk).status_code == 200
    client.post(f"{API}/users/{user_ids['clerk']}/deactivate", headers=admin)
    assert_error(client.get(f"{API}/me", headers=clerk), 401, "unauthorized")


def test_a_password_is_taken_as_typed_white_space_and_all(client, admin):
    """Text fields are stripped; a password never is: "  padded pass  " is not "padded pass"."""
    made = client.post(
        f"{API}/users",
        json={"username": " wang.fang ", "password": "  padded pass  ", "role": "clerk"},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["username"] == "wang.fang"
    assert login(client, "wang.fang", "padded pass").status_code == 401
    assert login(client, "wang.fang", "  padded pass  ").status_code == 200
