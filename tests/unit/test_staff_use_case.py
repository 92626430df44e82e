"""Staff users, logins and tokens (service.staff) on fakes, without a database: the rules
for names, roles and passwords, the last active admin kept, a deactivation revoking every
token, a login's rate limits per username and per client address, a token that stops
working when revoked, expired or its user deactivated; each change audited without the
password or its hash. The slow hash and the token minter are fakes (tests/fakes.py).

Over the database and HTTP: tests/e2e/test_staff_*.py, tests/integration/test_last_admin.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.staff import (
    Identity,
    LoginLimits,
    LoginRefused,
    StaffError,
    TooManyAttempts,
    activate_user,
    add_user,
    authenticate,
    change_role,
    deactivate_user,
    list_users,
    login,
    logout,
)
from tests.fakes import (
    FakeApiToken,
    FakePasswords,
    FakeStaffUser,
    FakeStore,
    FakeTokens,
    FakeUnitOfWork,
)

NOW = datetime(2025, 6, 1, 9, tzinfo=UTC)
TTL = timedelta(hours=8)
LIMITS = LoginLimits(max_failures=3, window=timedelta(minutes=15), max_per_client=5)
PASSWORD = "correct horse"


PASSWORDS = FakePasswords()


def world(*users: tuple[str, str]) -> FakeStore:
    """These (username, role) users, ids from 1, each with PASSWORD."""
    store = FakeStore()
    for i, (name, role) in enumerate(users, start=1):
        store.staff_users[i] = FakeStaffUser(i, name, f"h1:{PASSWORD}", role)
    return store


def new_user(
    store: FakeStore, username: str = "ann", password: str = PASSWORD, role: str = "clerk"
):
    return add_user(
        FakeUnitOfWork(store),
        username=username,
        password=password,
        role=role,
        passwords=PASSWORDS,
        actor="root",
        now=NOW,
    )


def log_in(
    store: FakeStore,
    username: str = "ann",
    password: str = PASSWORD,
    *,
    client: str = "10.0.0.1",
    at: datetime = NOW,
    tokens: FakeTokens | None = None,
):
    return login(
        FakeUnitOfWork(store),
        username=username,
        password=password,
        client=client,
        passwords=PASSWORDS,
        tokens=tokens or FakeTokens(),
        ttl=TTL,
        limits=LIMITS,
        now=at,
    )


def failures(store: FakeStore, scope: str, key: str) -> int:
    limit = store.login_limits.get((scope, key))
    return 0 if limit is None else limit.failures


# -- users ----------------------------------------------------------------------------------


def test_a_new_user_is_stored_with_the_hash_and_audited_without_it():
    store = world()

    user = new_user(store, "ann.lee@gas-co_2", role="auditor")

    assert user.id == 1
    kept = store.staff_users[1]
    assert (kept.username, kept.role, kept.active) == ("ann.lee@gas-co_2", "auditor", True)
    assert kept.password_hash == f"h1:{PASSWORD}"
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity, entry.entity_id, entry.at) == (
        "root",
        "user.create",
        "staff_user",
        1,
        NOW,
    )
    assert entry.after == {
        "id": 1,
        "username": "ann.lee@gas-co_2",
        "role": "auditor",
        "active": True,
    }
    assert [u.username for u in list_users(FakeUnitOfWork(store))] == ["ann.lee@gas-co_2"]


@pytest.mark.parametrize("username", ["", "_ann", ".ann", "ann lee", "ann/lee", "a" * 65, "анна"])
def test_a_username_outside_the_rule_is_refused(username):
    store = world()
    with pytest.raises(StaffError, match=r"^a username has 1 to 64 letters, digits"):
        new_user(store, username)
    assert store.staff_users == {} and store.audit == []


def test_a_username_of_one_or_of_64_characters_is_taken():
    store = world()
    new_user(store, "a")
    new_user(store, "b" * 64)
    assert [u.username for u in store.staff_users.values()] == ["a", "b" * 64]


def test_a_role_that_is_not_clerk_auditor_or_admin_is_refused():
    with pytest.raises(StaffError) as raised:
        new_user(world(), role="root")
    assert str(raised.value) == "role must be one of clerk, auditor, admin, not 'root'"


@pytest.mark.parametrize(("length", "taken"), [(7, False), (8, True), (1024, True), (1025, False)])
def test_a_password_has_8_to_1024_characters(length, taken):
    store = world()
    if taken:
        new_user(store, password="p" * length)
        assert store.staff_users[1].password_hash == "h1:" + "p" * length
    else:
        with pytest.raises(StaffError, match=r"^a password has 8 to 1024 characters$"):
            new_user(store, password="p" * length)
        assert store.staff_users == {}


def test_a_username_is_taken_once():
    store = world(("ann", "clerk"))
    with pytest.raises(Conflict, match=r"^user 'ann' already exists$"):
        new_user(store, "ann")
    assert len(store.staff_users) == 1


def test_a_role_change_is_audited_before_and_after():
    store = world(("root", "admin"), ("ann", "clerk"))

    user = change_role(FakeUnitOfWork(store), 2, "auditor", actor="root", now=NOW)

    assert user.role == store.staff_users[2].role == "auditor"
    (entry,) = store.audit
    assert (entry.action, entry.entity_id) == ("user.role", 2)
    assert entry.before == {"id": 2, "username": "ann", "role": "clerk", "active": True}
    assert entry.after == {"id": 2, "username": "ann", "role": "auditor", "active": True}


def test_an_unknown_role_or_user_is_refused():
    store = world(("root", "admin"))
    with pytest.raises(StaffError, match=r"^role must be one of"):
        change_role(FakeUnitOfWork(store), 1, "boss", actor="root", now=NOW)
    with pytest.raises(NotFound, match=r"^no user 9$"):
        change_role(FakeUnitOfWork(store), 9, "clerk", actor="root", now=NOW)
    with pytest.raises(NotFound, match=r"^no user 9$"):
        deactivate_user(FakeUnitOfWork(store), 9, actor="root", now=NOW)


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated():
    store = world(("root", "admin"), ("old", "admin"), ("ann", "clerk"))
    store.staff_users[2].active = False  # an inactive admin does not count

    for change in (
        lambda uow: change_role(uow, 1, "clerk", actor="root", now=NOW),
        lambda uow: deactivate_user(uow, 1, actor="root", now=NOW),
    ):
        with pytest.raises(Conflict) as raised:
            change(FakeUnitOfWork(store))
        assert str(raised.value) == "this is the last active admin: make another admin first"
        assert (store.staff_users[1].role, store.staff_users[1].active) == ("admin", True)
    assert store.audit == []


def test_with_another_active_admin_one_may_step_down():
    store = world(("root", "admin"), ("ann", "clerk"))
    change_role(FakeUnitOfWork(store), 2, "admin", actor="root", now=NOW)

    change_role(FakeUnitOfWork(store), 1, "clerk", actor="root", now=NOW)

    assert [(u.username, u.role) for u in store.staff_users.values()] == [
        ("root", "clerk"),
        ("ann", "admin"),
    ]


def test_a_deactivated_user_loses_every_token_and_reactivated_gets_none_back():
    store = world(("root", "admin"), ("ann", "clerk"))
    tokens = FakeTokens()
    first = log_in(store, tokens=tokens)
    second = log_in(store, tokens=tokens, at=NOW + timedelta(minutes=1))
    later = NOW + timedelta(hours=1)

    deactivate_user(FakeUnitOfWork(store), 2, actor="root", now=later)

    assert store.staff_users[2].active is False
    assert [t.revoked_at for t in store.api_tokens.values()] == [later, later]
    assert authenticate(FakeUnitOfWork(store), first.token, tokens=tokens, now=later) is None
    with pytest.raises(LoginRefused):
        log_in(store, at=later)

    activate_user(FakeUnitOfWork(store), 2, actor="root", now=later)

    assert store.staff_users[2].active is True
    assert authenticate(FakeUnitOfWork(store), second.token, tokens=tokens, now=later) is None
    assert log_in(store, at=later, tokens=tokens).identity.username == "ann"
    actions = [e.action for e in store.audit if e.action.startswith("user.")]
    assert actions == ["user.deactivate", "user.activate"]


# -- logins -----------------------------------------------------------------------------------


def test_a_login_issues_a_token_for_the_ttl_and_is_audited():
    store = world(("ann", "clerk"))

    issued = log_in(store)

    expires = NOW + TTL
    assert (issued.token, issued.expires_at) == ("tok-1", expires)
    assert issued.identity == Identity(1, "ann", "clerk", "sha:tok-1", expires)
    (token,) = store.api_tokens.values()
    assert (token.token_hash, token.user_id, token.issued_at, token.expires_at) == (
        "sha:tok-1",  # only the digest is kept
        1,
        NOW,
        expires,
    )
    assert [(a.username, a.client, a.success) for a in store.login_attempts] == [
        ("ann", "10.0.0.1", True)
    ]
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity_id) == ("ann", "auth.login", 1)
    assert entry.after == {"client": "10.0.0.1", "expires_at": "2025-06-01T17:00:00+00:00"}
    # a success leaves nothing counted against the name or the address
    assert failures(store, "username", "ann") == failures(store, "client", "10.0.0.1") == 0


@pytest.mark.parametrize(
    ("username", "password", "entity_id"),
    [("ann", "wrong password", 1), ("nobody", PASSWORD, "")],
)
def test_a_wrong_password_or_an_unknown_name_is_refused_alike_and_counted(
    username, password, entity_id
):
    store = world(("ann", "clerk"))

    with pytest.raises(LoginRefused) as raised:
        log_in(store, username, password)

    assert str(raised.value) == "wrong username or password"
    assert store.api_tokens == {}
    assert [(a.username, a.success) for a in store.login_attempts] == [(username, False)]
    (entry,) = store.audit
    assert (entry.actor, entry.action, entry.entity_id, entry.after) == (
        username,
        "auth.login_failed",
        entity_id,
        {"client": "10.0.0.1"},
    )
    assert failures(store, "username", username) == failures(store, "client", "10.0.0.1") == 1


def test_a_deactivated_user_is_refused_with_the_right_password():
    store = world(("ann", "clerk"))
    store.staff_users[1].active = False
    with pytest.raises(LoginRefused, match=r"^wrong username or password$"):
        log_in(store)
    assert store.api_tokens == {}


def test_past_the_limit_a_name_is_refused_even_the_right_password_until_its_window_ends():
    store = world(("ann", "clerk"))
    for minute in range(3):  # 3 failures allowed in 15 minutes, the first at NOW
        with pytest.raises(LoginRefused):
            log_in(store, password="wrong password", at=NOW + timedelta(minutes=minute))

    with pytest.raises(TooManyAttempts) as raised:
        log_in(store, at=NOW + timedelta(minutes=3, seconds=30))

    assert str(raised.value) == "too many failed logins: try again later"
    assert raised.value.retry_after_seconds == 11 * 60 + 30  # the window began at NOW
    assert len(store.login_attempts) == 3  # the refused one is not checked nor recorded
    assert store.api_tokens == {}
    # 15 minutes after the window began it starts again: the right password gets in
    issued = log_in(store, at=NOW + timedelta(minutes=15))
    assert issued.identity.user_id == 1
    assert failures(store, "username", "ann") == 0


def test_a_success_clears_the_names_failures():
    store = world(("ann", "clerk"))
    for minute in range(2):
        with pytest.raises(LoginRefused):
            log_in(store, password="wrong password", at=NOW + timedelta(minutes=minute))
    log_in(store, at=NOW + timedelta(minutes=2))

    for minute in range(3, 6):  # three more wrong ones are allowed again
        with pytest.raises(LoginRefused):
            log_in(store, password="wrong password", at=NOW + timedelta(minutes=minute))
    with pytest.raises(TooManyAttempts):
        log_in(store, at=NOW + timedelta(minutes=6))


def test_past_the_limit_an_address_is_refused_without_locking_the_name_out():
    store = world(*[(f"user{i}", "clerk") for i in range(1, 8)])
    for i in range(1, 6):  # 5 failures from one address, each under another name
        with pytest.raises(LoginRefused):
            log_in(store, f"user{i}", "wrong password", at=NOW + timedelta(minutes=i))

    with pytest.raises(TooManyAttempts) as raised:
        log_in(store, "user6", at=NOW + timedelta(minutes=10))

    assert raised.value.retry_after_seconds == 6 * 60  # that window began at minute 1
    assert failures(store, "client", "10.0.0.1") == 6
    assert failures(store, "username", "user6") == 0  # not held against the name
    # the same name from another address gets in
    assert log_in(store, "user6", client="10.0.0.2", at=NOW + timedelta(minutes=10)).token


def test_a_success_takes_back_the_attempts_count_against_its_address():
    store = world(("ann", "clerk"), ("bob", "clerk"))
    with pytest.raises(LoginRefused):
        log_in(store, "bob", "wrong password")

    log_in(store, "ann", at=NOW + timedelta(minutes=1))

    assert failures(store, "client", "10.0.0.1") == 1  # bob's failure only
    assert failures(store, "username", "bob") == 1


def test_a_login_brings_an_outdated_hash_up_to_date():
    store = world(("ann", "clerk"))
    store.staff_users[1].password_hash = f"h0:{PASSWORD}"

    log_in(store)

    assert store.staff_users[1].password_hash == f"h1:{PASSWORD}"


# -- tokens ---------------------------------------------------------------------------------


def test_a_token_names_its_holder_until_it_expires():
    store = world(("ann", "admin"))
    tokens = FakeTokens()
    issued = log_in(store, tokens=tokens)

    def who(token: str, at: datetime) -> Identity | None:
        return authenticate(FakeUnitOfWork(store), token, tokens=tokens, now=at)

    assert who(issued.token, NOW + TTL - timedelta(seconds=1)) == issued.identity
    assert who(issued.token, NOW + TTL) is None  # expired at its expiry
    assert who("tok-99", NOW) is None


def test_a_token_of_a_user_deactivated_since_no_longer_works():
    store = world(("ann", "clerk"))
    tokens = FakeTokens()
    issued = log_in(store, tokens=tokens)
    store.staff_users[1].active = False  # as a deactivation would, even before revoking
    assert authenticate(FakeUnitOfWork(store), issued.token, tokens=tokens, now=NOW) is None


def test_logging_out_revokes_the_token_once():
    store = world(("ann", "clerk"))
    tokens = FakeTokens()
    issued = log_in(store, tokens=tokens)
    other = log_in(store, tokens=tokens)
    later = NOW + timedelta(minutes=5)

    logout(FakeUnitOfWork(store), issued.identity, now=later)
    logout(FakeUnitOfWork(store), issued.identity, now=later + timedelta(minutes=1))

    assert store.api_tokens[1].revoked_at == later
    assert authenticate(FakeUnitOfWork(store), issued.token, tokens=tokens, now=later) is None
    assert authenticate(FakeUnitOfWork(store), other.token, tokens=tokens, now=later) is not None
    outs = [e for e in store.audit if e.action == "auth.logout"]
    assert [(e.actor, e.entity_id, e.at) for e in outs] == [("ann", 1, later)]


def test_the_fake_keeps_the_tables_unique_keys():
    store = world(("ann", "clerk"))
    store.api_tokens[1] = FakeApiToken(1, "sha:x", 1, NOW, NOW + TTL)
    uow = FakeUnitOfWork(store)
    with uow, pytest.raises(ValueError, match="unique"):
        uow.staff.add_user(username="ann", password_hash="h", role="clerk")
    with uow, pytest.raises(ValueError, match="unique"):
        uow.staff.add_token(token_hash="sha:x", user_id=1, issued_at=NOW, expires_at=NOW)
