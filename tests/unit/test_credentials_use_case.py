"""A staff user's password and lockout (service.credentials) on fakes, without a database:
one's own change proven by the current password (wrong ones counted like failed logins),
an admin's reset revoking every token and lifting the lock, an admin's unlock of a name or
an address; each audited, never with a password or its hash.

Over the API and the CLI: tests/e2e/test_staff_logins.py, tests/integration/test_cli_staff.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.service.accounts import NotFound
from gasbill.service.credentials import (
    WrongPassword,
    change_own_password,
    find_user,
    reset_password,
    unlock_address,
    unlock_user,
)
from gasbill.service.staff import LoginLimits, StaffError, TooManyAttempts
from tests.fakes import (
    FakeApiToken,
    FakeLoginLimit,
    FakePasswords,
    FakeStaffUser,
    FakeStore,
    FakeUnitOfWork,
)

NOW = datetime(2025, 6, 1, 9, tzinfo=UTC)
LIMITS = LoginLimits(max_failures=3, window=timedelta(minutes=15), max_per_client=5)
PASSWORDS = FakePasswords()
OLD, NEW = "old secret", "new secret"
PUBLIC = {"id": 1, "username": "ann", "role": "clerk", "active": True}


def world() -> FakeStore:
    """ann (1), with OLD, two live tokens and one revoked; two failed logins counted."""
    store = FakeStore()
    store.staff_users[1] = FakeStaffUser(1, "ann", f"h1:{OLD}", "clerk")
    store.staff_users[2] = FakeStaffUser(2, "root", "h1:root pass", "admin")
    earlier = NOW - timedelta(hours=1)
    for i, revoked in ((1, None), (2, None), (3, earlier)):
        store.api_tokens[i] = FakeApiToken(i, f"sha:t{i}", 1, earlier, NOW + timedelta(hours=7))
        store.api_tokens[i].revoked_at = revoked
    store.api_tokens[4] = FakeApiToken(4, "sha:root", 2, earlier, NOW + timedelta(hours=7))
    store.login_limits[("username", "ann")] = FakeLoginLimit(2, NOW - timedelta(minutes=5))
    store.login_limits[("client", "10.0.0.1")] = FakeLoginLimit(4, NOW - timedelta(minutes=5))
    return store


def revoked(store: FakeStore) -> dict[int, datetime | None]:
    return {i: t.revoked_at for i, t in store.api_tokens.items()}


def change(store: FakeStore, current: str = OLD, new: str = NEW, *, at: datetime = NOW):
    return change_own_password(
        FakeUnitOfWork(store),
        1,
        current=current,
        new=new,
        passwords=PASSWORDS,
        limits=LIMITS,
        now=at,
        keep_token="sha:t2",
    )


def test_find_user_by_name():
    store = world()
    assert find_user(FakeUnitOfWork(store), "ann").id == 1
    with pytest.raises(NotFound, match=r"^no user 'zed'$"):
        find_user(FakeUnitOfWork(store), "zed")


def test_unlocking_a_user_forgets_the_names_failures_not_the_addresss():
    store = world()

    user, cleared = unlock_user(FakeUnitOfWork(store), 1, actor="root", now=NOW)

    assert (user.id, cleared) == (1, 2)
    assert ("username", "ann") not in store.login_limits
    assert store.login_limits[("client", "10.0.0.1")].failures == 4
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity, entry.entity_id) == (
        "root",
        "user.unlock",
        "staff_user",
        1,
    )
    assert (entry.before, entry.after) == ({"failures": 2}, PUBLIC)
    # nothing to clear is 0
    assert unlock_user(FakeUnitOfWork(store), 1, actor="root", now=NOW)[1] == 0
    with pytest.raises(NotFound, match=r"^no user 7$"):
        unlock_user(FakeUnitOfWork(store), 7, actor="root", now=NOW)


def test_unlocking_an_address_forgets_its_failures():
    store = world()

    cleared = unlock_address(FakeUnitOfWork(store), "10.0.0.1", actor="root", now=NOW)

    assert cleared == 4
    assert list(store.login_limits) == [("username", "ann")]
    (entry,) = store.audit
    assert (entry.action, entry.entity, entry.entity_id, entry.before) == (
        "auth.unlock_address",
        "login_limit",
        "10.0.0.1",
        {"failures": 4},
    )
    assert unlock_address(FakeUnitOfWork(store), "10.9.9.9", actor="root", now=NOW) == 0


def test_an_admins_reset_sets_the_hash_revokes_every_token_and_lifts_the_lock():
    store = world()
    earlier = store.api_tokens[3].revoked_at

    user = reset_password(
        FakeUnitOfWork(store), 1, password=NEW, passwords=PASSWORDS, actor="root", now=NOW
    )

    assert user.password_hash == store.staff_users[1].password_hash == f"h1:{NEW}"
    assert revoked(store) == {1: NOW, 2: NOW, 3: earlier, 4: None}  # root's own token kept
    assert ("username", "ann") not in store.login_limits
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity_id, entry.after) == (
        "root",
        "user.password_reset",
        1,
        PUBLIC,
    )
    assert NEW not in repr(entry) and "h1:" not in repr(entry)


def test_a_reset_to_a_short_password_or_of_an_unknown_user_changes_nothing():
    store = world()
    with pytest.raises(StaffError, match=r"^a password has 8 to 1024 characters$"):
        reset_password(
            FakeUnitOfWork(store), 1, password="short", passwords=PASSWORDS, actor="root", now=NOW
        )
    with pytest.raises(NotFound, match=r"^no user 9$"):
        reset_password(
            FakeUnitOfWork(store), 9, password=NEW, passwords=PASSWORDS, actor="root", now=NOW
        )
    assert store.staff_users[1].password_hash == f"h1:{OLD}"
    assert store.audit == []


def test_ones_own_change_keeps_the_token_it_came_with_and_revokes_the_others():
    store = world()
    earlier = store.api_tokens[3].revoked_at

    user = change(store)

    assert user.password_hash == store.staff_users[1].password_hash == f"h1:{NEW}"
    assert revoked(store) == {1: NOW, 2: None, 3: earlier, 4: None}
    assert ("username", "ann") not in store.login_limits  # the right password: lock lifted
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity_id, entry.after) == (
        "ann",
        "user.password_change",
        1,
        PUBLIC,
    )


def test_the_new_password_must_differ_and_keep_to_the_length_rule():
    store = world()
    with pytest.raises(StaffError, match=r"^the new password is the same as the current one$"):
        change(store, new=OLD)
    with pytest.raises(StaffError, match=r"^a password has 8 to 1024 characters$"):
        change(store, new="short")
    assert store.staff_users[1].password_hash == f"h1:{OLD}"
    assert store.login_limits[("username", "ann")].failures == 2  # nothing counted
    assert store.audit == []


def test_a_wrong_current_password_is_refused_counted_and_audited():
    store = world()

    with pytest.raises(WrongPassword, match=r"^the current password is wrong$"):
        change(store, current="guessed wrong")

    assert store.staff_users[1].password_hash == f"h1:{OLD}"
    assert store.login_limits[("username", "ann")].failures == 3
    assert revoked(store)[1] is None
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity_id, entry.at) == (
        "ann",
        "user.password_change_refused",
        1,
        NOW,
    )


def test_past_the_names_limit_even_the_right_current_password_is_refused():
    store = world()  # 2 failures counted since 5 minutes ago
    with pytest.raises(WrongPassword):
        change(store, current="guessed wrong")  # the 3rd: still checked

    with pytest.raises(TooManyAttempts) as raised:
        change(store)  # the 4th is past the limit of 3

    assert str(raised.value) == "too many wrong passwords: try again later"
    assert raised.value.retry_after_seconds == 10 * 60  # the window began 5 minutes ago
    assert store.staff_users[1].password_hash == f"h1:{OLD}"
    # once the window is over the right one is taken
    change(store, at=NOW + timedelta(minutes=10))
    assert store.staff_users[1].password_hash == f"h1:{NEW}"


def test_changing_the_password_of_an_unknown_user_is_not_found():
    store = world()
    with pytest.raises(NotFound, match=r"^no user 9$"):
        change_own_password(
            FakeUnitOfWork(store),
            9,
            current=OLD,
            new=NEW,
            passwords=PASSWORDS,
            limits=LIMITS,
            now=NOW,
        )
