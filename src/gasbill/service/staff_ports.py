"""The staff port: users, their bearer tokens, and the login limits' counters.

Declared here, re-exported by `service.ports`; `adapters/db` implements it
(`StaffRepository`), and the unit of work carries it as `uow.staff`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol


class StaffUserRecord(Protocol):
    """A staff user: a clerk, an auditor or an admin."""

    id: int | None
    username: str
    password_hash: str
    role: str
    active: bool
    created_at: datetime


class ApiTokenRecord(Protocol):
    """A bearer token issued at a login (only its hash is kept)."""

    id: int | None
    token_hash: str
    user_id: int
    issued_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class StaffRepository(Protocol):
    def save(self, row: StaffUserRecord | ApiTokenRecord) -> None:
        """Keep a user's or a token's changes in this unit of work."""

    def add_user(self, *, username: str, password_hash: str, role: str) -> StaffUserRecord:
        """Add the user; its id is known on return."""

    def user(self, user_id: int, *, lock: bool = False) -> StaffUserRecord | None: ...

    def by_username(self, username: str) -> StaffUserRecord | None: ...

    def users(self) -> Sequence[StaffUserRecord]: ...

    def lock_active_admins(self) -> list[int]:
        """The active admins' ids, locked until the unit of work ends."""

    def add_token(
        self, *, token_hash: str, user_id: int, issued_at: datetime, expires_at: datetime
    ) -> ApiTokenRecord: ...

    def token(self, token_hash: str) -> tuple[ApiTokenRecord, StaffUserRecord] | None:
        """The token with this hash, and its user."""

    def revoke_tokens(self, user_id: int, at: datetime, *, keep: str = "") -> None:
        """Revoke the user's live tokens at `at`, but the one whose hash is `keep`."""

    def add_attempt(self, *, username: str, client: str, at: datetime, success: bool) -> None:
        """Record a login attempt."""

    def count_failure(
        self, scope: str, key: str, *, now: datetime, since: datetime
    ) -> tuple[int, datetime]:
        """One more failure for (scope, key), atomically; (failures, window start). A window
        that began at or before `since` starts again at `now`."""

    def forgive_failure(self, scope: str, key: str) -> None:
        """Take back one counted failure (the attempt was not one)."""

    def clear_failures(self, scope: str, key: str) -> int:
        """Forget (scope, key)'s failures; how many there were."""
