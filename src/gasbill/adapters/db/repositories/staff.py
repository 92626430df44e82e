"""Staff users, their bearer tokens, and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.staff import ApiToken, LoginAttempt, LoginLimit, StaffUser
from gasbill.adapters.db.types import UTCDateTime
from gasbill.service.staff_ports import ApiTokenRecord, StaffUserRecord

LIMITS = LoginLimit.__table__  # type: ignore[attr-defined]


class StaffRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # users
    def save(self, row: StaffUserRecord | ApiTokenRecord) -> None:
        """Keep a user's or a token's changes in this unit of work (flushed at commit)."""
        self.session.add(row)

    def add_user(self, *, username: str, password_hash: str, role: str) -> StaffUser:
        user = StaffUser(username=username, password_hash=password_hash, role=role)
        self.session.add(user)
        self.session.flush()
        return user

    def user(self, user_id: int, *, lock: bool = False) -> StaffUser | None:
        if lock:
            return self.session.exec(
                select(StaffUser).where(StaffUser.id == user_id).with_for_update()
            ).first()
        return self.session.get(StaffUser, user_id)

    def by_username(self, username: str) -> StaffUser | None:
        return self.session.exec(select(StaffUser).where(StaffUser.username == username)).first()

    def users(self) -> Sequence[StaffUser]:
        return self.session.exec(select(StaffUser).order_by(col(StaffUser.id))).all()

    def lock_active_admins(self) -> list[int]:
        """The ids of every active admin, their rows locked (in id order) until commit.

        Two admins removing each other at the same moment then take turns, and
        the second sees the first one's change: there is always one left.
        """
        query = (
            select(StaffUser.id)
            .where(StaffUser.role == "admin", col(StaffUser.active))
            .order_by(col(StaffUser.id))
            .with_for_update()
        )
        return [i for i in self.session.exec(query).all() if i is not None]

    # tokens
    def add_token(
        self, *, token_hash: str, user_id: int, issued_at: datetime, expires_at: datetime
    ) -> ApiToken:
        token = ApiToken(
            token_hash=token_hash, user_id=user_id, issued_at=issued_at, expires_at=expires_at
        )
        self.session.add(token)
        self.session.flush()
        return token

    def token(self, token_hash: str) -> tuple[ApiToken, StaffUser] | None:
        row = self.session.exec(
            select(ApiToken, StaffUser)
            .join(StaffUser, col(StaffUser.id) == col(ApiToken.user_id))
            .where(ApiToken.token_hash == token_hash)
        ).first()
        return None if row is None else (row[0], row[1])

    def revoke_tokens(self, user_id: int, at: datetime, *, keep: str = "") -> None:
        """Revoke every live token of the user but the one whose digest is `keep`."""
        self.session.execute(
            sa.update(ApiToken)
            .where(
                col(ApiToken.user_id) == user_id,
                col(ApiToken.revoked_at).is_(None),
                col(ApiToken.token_hash) != keep,
            )
            .values(revoked_at=at)
        )

    # login attempts
    def add_attempt(self, *, username: str, client: str, at: datetime, success: bool) -> None:
        attempt = LoginAttempt(username=username, client=client, at=at, success=success)
        self.session.add(attempt)
        self.session.flush()

    def count_failure(
        self, scope: str, key: str, *, now: datetime, since: datetime
    ) -> tuple[int, datetime]:
        """One more failure for (scope, key), in one atomic statement; (failures, window start).

        A window that began at or before `since` starts again at `now`. Concurrent
        callers each get their own count (the row is locked by the upsert), so
        no two of them can both see room under the limit.
        """
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        expired = LIMITS.c.window_start <= since
        at_now = sa.bindparam("now", now, type_=UTCDateTime())
        statement = (
            insert(LIMITS)
            .values(scope=scope, key=key, failures=1, window_start=now)
            .on_conflict_do_update(
                index_elements=[LIMITS.c.scope, LIMITS.c.key],
                set_={
                    "failures": sa.case((expired, 1), else_=LIMITS.c.failures + 1),
                    "window_start": sa.case((expired, at_now), else_=LIMITS.c.window_start),
                },
            )
            .returning(LIMITS.c.failures, LIMITS.c.window_start)
        )
        failures, start = self.session.execute(statement).one()
        return int(failures), start

    def forgive_failure(self, scope: str, key: str) -> None:
        """Take back one counted failure (the attempt was not one)."""
        self.session.execute(
            sa.update(LIMITS)
            .where(LIMITS.c.scope == scope, LIMITS.c.key == key, LIMITS.c.failures > 0)
            .values(failures=LIMITS.c.failures - 1)
        )

    def clear_failures(self, scope: str, key: str) -> int:
        """Forget (scope, key)'s failures; how many there were."""
        found = self.session.execute(
            sa.select(LIMITS.c.failures).where(LIMITS.c.scope == scope, LIMITS.c.key == key)
        ).scalar()
        self.session.execute(sa.delete(LIMITS).where(LIMITS.c.scope == scope, LIMITS.c.key == key))
        return int(found or 0)
