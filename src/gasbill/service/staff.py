"""Staff users, logins and tokens, and the admin's tasks; every change is audited.

Passwords and tokens are handled through two ports the edge provides: a slow
password hash (`Passwords`) and a token minter that keeps only a keyed digest
of each token (`Tokens`). The clock is always passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from gasbill.domain.errors import GasbillError
from gasbill.domain.tariff import Tariff
from gasbill.service.accounts import Conflict, NotFound
from gasbill.service.ports import StaffRepository, StaffUserRecord, UnitOfWork

ROLES = ("clerk", "auditor", "admin")
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


class StaffError(GasbillError, ValueError):
    """A staff user request that breaks a rule (name, role, password)."""


class LoginRefused(GasbillError):
    """Wrong username or password, or a deactivated user: the message never says which."""


class TooManyAttempts(GasbillError):
    """Too many failed logins for this username or from this client within the window."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class Passwords(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str | None, password: str) -> bool:
        """False for a None hash too, after the same work as a real check."""
        ...

    def needs_rehash(self, password_hash: str) -> bool: ...


class Tokens(Protocol):
    def new(self) -> tuple[str, str]:
        """A fresh token and the digest that is stored in its place."""
        ...

    def digest(self, token: str) -> str: ...


@dataclass(frozen=True, slots=True)
class LoginLimits:
    """Failed logins allowed per window: per username, and (more) per client address."""

    max_failures: int
    window: timedelta
    max_per_client: int = 30


USERNAME_SCOPE, CLIENT_SCOPE = "username", "client"


def retry_after(window_start: datetime, limits: LoginLimits, now: datetime) -> int:
    """Whole seconds until the window that refused an attempt is over (at least 1)."""
    return max(1, math.ceil((window_start + limits.window - now).total_seconds()))


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a valid token belongs to."""

    user_id: int
    username: str
    role: str
    token_hash: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_at: datetime
    identity: Identity


def public(user: StaffUserRecord) -> dict[str, object]:
    """A user as the audit log and the API show it: never the password hash."""
    return {"id": user.id, "username": user.username, "role": user.role, "active": user.active}


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise StaffError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise StaffError(f"a password has {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


# -- users --------------------------------------------------------------------


def add_user(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    role: str,
    passwords: Passwords,
    actor: str,
    now: datetime | None = None,
) -> StaffUserRecord:
    if not USERNAME.fullmatch(username):
        raise StaffError(
            "a username has 1 to 64 letters, digits, '_', '.', '@' or '-', "
            "and starts with a letter or digit"
        )
    _check_role(role)
    password_hash = passwords.hash(check_password(password))
    with uow:
        staff = uow.staff
        if staff.by_username(username) is not None:
            raise Conflict(f"user {username!r} already exists")
        user = staff.add_user(username=username, password_hash=password_hash, role=role)
        uow.audit.record(
            actor=actor,
            action="user.create",
            entity="staff_user",
            entity_id=user.id,
            after=public(user),
            at=now,
        )
        uow.commit()
        return user


def list_users(uow: UnitOfWork) -> Sequence[StaffUserRecord]:
    with uow:
        return uow.staff.users()


def change_role(
    uow: UnitOfWork, user_id: int, role: str, *, actor: str, now: datetime | None = None
) -> StaffUserRecord:
    _check_role(role)
    return _change(uow, user_id, actor=actor, now=now, action="user.role", role=role)


def deactivate_user(
    uow: UnitOfWork, user_id: int, *, actor: str, now: datetime | None = None
) -> StaffUserRecord:
    """The user can no longer log in, and every token they hold stops working."""
    return _change(uow, user_id, actor=actor, now=now, action="user.deactivate", active=False)


def activate_user(
    uow: UnitOfWork, user_id: int, *, actor: str, now: datetime | None = None
) -> StaffUserRecord:
    """A deactivated user may log in again (with their password; old tokens stay revoked)."""
    return _change(uow, user_id, actor=actor, now=now, action="user.activate", active=True)


def _change(
    uow: UnitOfWork,
    user_id: int,
    *,
    actor: str,
    now: datetime | None,
    action: str,
    role: str | None = None,
    active: bool | None = None,
) -> StaffUserRecord:
    now = now or datetime.now(UTC)
    with uow:
        staff = uow.staff
        admins = staff.lock_active_admins()  # before any change, so none is counted twice
        user = staff.user(user_id, lock=True)
        if user is None:
            raise NotFound(f"no user {user_id}")
        before = public(user)
        if role is not None:
            user.role = role
        if active is not None:
            user.active = active
        still_admin = user.role == "admin" and user.active
        if user_id in admins and not still_admin and len(admins) <= 1:
            raise Conflict("this is the last active admin: make another admin first")
        uow.staff.save(user)
        if not user.active:
            staff.revoke_tokens(user_id, now)
        uow.flush()
        uow.audit.record(
            actor=actor,
            action=action,
            entity="staff_user",
            entity_id=user.id,
            before=before,
            after=public(user),
            at=now,
        )
        uow.commit()
        return user


# -- logins and tokens --------------------------------------------------------


def login(
    uow: UnitOfWork,
    *,
    username: str,
    password: str,
    client: str,
    passwords: Passwords,
    tokens: Tokens,
    ttl: timedelta,
    limits: LoginLimits,
    now: datetime,
) -> IssuedToken:
    """A token for the right password; every attempt is recorded, failures are rate-limited.

    The attempt is counted (per username, then per client) and committed
    before the password is checked, so no number of concurrent attempts gets
    more checks than the limit; a success then clears its username's count
    and takes back the client's, a failure leaves both counted.
    """
    name, address = username[:64], client[:64]
    with uow:
        staff = uow.staff
        refused_since = _admit(staff, limits, username=name, client=address, now=now)
        user = staff.by_username(username)
        uow.commit()
    if refused_since is not None:
        raise TooManyAttempts(
            "too many failed logins: try again later", retry_after(refused_since, limits, now)
        )
    matches = passwords.verify(user.password_hash if user else None, password)
    ok = user is not None and user.active and matches
    with uow:
        staff = uow.staff
        staff.add_attempt(username=name, client=address, at=now, success=ok)
        if user is None or not ok:
            uow.audit.record(
                actor=username[:100],
                action="auth.login_failed",
                entity="staff_user",
                entity_id=user.id if user else "",
                after={"client": client},
                at=now,
            )
            uow.commit()
            raise LoginRefused("wrong username or password")
        staff.clear_failures(USERNAME_SCOPE, name)
        staff.forgive_failure(CLIENT_SCOPE, address)
        issued = _issue(uow, staff, user, password, client, passwords, tokens, now + ttl, now)
        uow.commit()
        return issued


def _issue(
    uow: UnitOfWork,
    staff: StaffRepository,
    user: StaffUserRecord,
    password: str,
    client: str,
    passwords: Passwords,
    tokens: Tokens,
    expires_at: datetime,
    now: datetime,
) -> IssuedToken:
    """A successful login: the hash brought up to date, a token issued and audited (in the
    caller's unit of work, which commits)."""
    assert user.id is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
        uow.staff.save(user)
    token, digest = tokens.new()
    staff.add_token(token_hash=digest, user_id=user.id, issued_at=now, expires_at=expires_at)
    uow.audit.record(
        actor=user.username,
        action="auth.login",
        entity="staff_user",
        entity_id=user.id,
        after={"client": client, "expires_at": expires_at.isoformat()},
        at=now,
    )
    identity = Identity(user.id, user.username, user.role, digest, expires_at)
    return IssuedToken(token, expires_at, identity)


def _admit(
    staff: StaffRepository, limits: LoginLimits, *, username: str, client: str, now: datetime
) -> datetime | None:
    """Count the attempt; None if it may be checked, else when the refusing window began.

    An attempt refused for its username does not count against its address
    (no one locks an office out through one name), nor one refused for its
    address against its username.
    """
    since = now - limits.window
    failures, start = staff.count_failure(USERNAME_SCOPE, username, now=now, since=since)
    if failures > limits.max_failures:
        return start
    failures, start = staff.count_failure(CLIENT_SCOPE, client, now=now, since=since)
    if failures > limits.max_per_client:
        staff.forgive_failure(USERNAME_SCOPE, username)
        return start
    return None


def authenticate(uow: UnitOfWork, token: str, *, tokens: Tokens, now: datetime) -> Identity | None:
    """Who holds this token, or None if it is unknown, revoked, expired or its user inactive."""
    digest = tokens.digest(token)
    with uow:
        found = uow.staff.token(digest)
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or row.expires_at <= now or not user.active:
        return None
    assert user.id is not None
    return Identity(user.id, user.username, user.role, digest, row.expires_at)


def logout(uow: UnitOfWork, identity: Identity, *, now: datetime) -> None:
    with uow:
        found = uow.staff.token(identity.token_hash)
        if found is None or found[0].revoked_at is not None:
            return
        row = found[0]
        row.revoked_at = now
        uow.staff.save(row)
        uow.audit.record(
            actor=identity.username,
            action="auth.logout",
            entity="staff_user",
            entity_id=identity.user_id,
            at=now,
        )
        uow.commit()


# -- the admin's other tasks --------------------------------------------------


class TariffFiles(Protocol):
    """The tariff files, read again on demand (the catalog adapter)."""

    @property
    def directory(self) -> Path: ...

    def reload(self) -> None: ...

    def all(self) -> list[Tariff]: ...


def reload_tariffs(
    uow: UnitOfWork, catalog: TariffFiles, *, actor: str, now: datetime | None = None
) -> list[Tariff]:
    """Forget the cached tariffs and read every file again; a broken file raises TariffError."""
    catalog.reload()
    tariffs = catalog.all()
    with uow:
        uow.audit.record(
            actor=actor,
            action="tariffs.reload",
            entity="tariff",
            after={"tariffs": [t.id for t in tariffs], "dir": str(catalog.directory)},
            at=now,
        )
        uow.commit()
    return tariffs
