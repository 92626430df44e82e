"""A staff user's password and lockout: change one's own, an admin's reset, an admin's unlock.

Each is one use case called alike by the staff API and the `gasbill user`
commands, and each is audited (never with a password or its hash). Wrong
current passwords count against the username's login limit, like logins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gasbill.domain.errors import GasbillError
from gasbill.service.accounts import NotFound
from gasbill.service.ports import StaffUserRecord, UnitOfWork
from gasbill.service.staff import (
    CLIENT_SCOPE,
    USERNAME_SCOPE,
    LoginLimits,
    Passwords,
    StaffError,
    TooManyAttempts,
    check_password,
    public,
    retry_after,
)


class WrongPassword(GasbillError):
    """The current password given to change it is not the user's."""


def find_user(uow: UnitOfWork, username: str) -> StaffUserRecord:
    with uow:
        user = uow.staff.by_username(username)
    if user is None:
        raise NotFound(f"no user {username!r}")
    return user


def unlock_user(
    uow: UnitOfWork, user_id: int, *, actor: str, now: datetime | None = None
) -> tuple[StaffUserRecord, int]:
    """Forget the username's failed logins so it may log in at once; (user, failures cleared)."""
    with uow:
        staff = uow.staff
        user = staff.user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        cleared = staff.clear_failures(USERNAME_SCOPE, user.username)
        uow.audit.record(
            actor=actor,
            action="user.unlock",
            entity="staff_user",
            entity_id=user_id,
            before={"failures": cleared},
            after=public(user),
            at=now,
        )
        uow.commit()
        return user, cleared


def unlock_address(uow: UnitOfWork, client: str, *, actor: str, now: datetime | None = None) -> int:
    """Forget the failed logins counted against one client address; how many there were."""
    with uow:
        cleared = uow.staff.clear_failures(CLIENT_SCOPE, client[:64])
        uow.audit.record(
            actor=actor,
            action="auth.unlock_address",
            entity="login_limit",
            entity_id=client[:100],
            before={"failures": cleared},
            at=now,
        )
        uow.commit()
        return cleared


def reset_password(
    uow: UnitOfWork,
    user_id: int,
    *,
    password: str,
    passwords: Passwords,
    actor: str,
    now: datetime | None = None,
) -> StaffUserRecord:
    """The admin sets a new password: every token of the user stops working, the lock goes."""
    now = now or datetime.now(UTC)
    password_hash = passwords.hash(check_password(password))
    with uow:
        staff = uow.staff
        user = staff.user(user_id, lock=True)
        if user is None:
            raise NotFound(f"no user {user_id}")
        user.password_hash = password_hash
        uow.staff.save(user)
        staff.revoke_tokens(user_id, now)
        staff.clear_failures(USERNAME_SCOPE, user.username)
        uow.audit.record(
            actor=actor,
            action="user.password_reset",
            entity="staff_user",
            entity_id=user_id,
            after=public(user),
            at=now,
        )
        uow.commit()
        return user


def change_own_password(
    uow: UnitOfWork,
    user_id: int,
    *,
    current: str,
    new: str,
    passwords: Passwords,
    limits: LoginLimits,
    now: datetime,
    keep_token: str = "",
) -> StaffUserRecord:
    """The user's own change, proven by the current password; their other tokens are revoked."""
    check_password(new)
    if new == current:
        raise StaffError("the new password is the same as the current one")
    with uow:
        staff = uow.staff
        user = staff.user(user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        failures, start = staff.count_failure(
            USERNAME_SCOPE, user.username, now=now, since=now - limits.window
        )
        uow.commit()
    if failures > limits.max_failures:
        raise TooManyAttempts(
            "too many wrong passwords: try again later", retry_after(start, limits, now)
        )
    if not passwords.verify(user.password_hash, current):
        with uow:
            uow.audit.record(
                actor=user.username,
                action="user.password_change_refused",
                entity="staff_user",
                entity_id=user_id,
                at=now,
            )
            uow.commit()
        raise WrongPassword("the current password is wrong")
    password_hash = passwords.hash(new)
    with uow:
        staff = uow.staff
        changed = staff.user(user_id, lock=True)
        assert changed is not None
        changed.password_hash = password_hash
        uow.staff.save(changed)
        staff.revoke_tokens(user_id, now, keep=keep_token)
        staff.clear_failures(USERNAME_SCOPE, changed.username)
        uow.audit.record(
            actor=changed.username,
            action="user.password_change",
            entity="staff_user",
            entity_id=user_id,
            after=public(changed),
            at=now,
        )
        uow.commit()
        return changed
