"""Staff users, their bearer tokens, and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.tables.staff import ApiToken, LoginAttempt, StaffUser


class StaffRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    # users
    def add_user(self, user: StaffUser) -> StaffUser:
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
    def add_token(self, token: ApiToken) -> ApiToken:
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

    def revoke_tokens(self, user_id: int, at: datetime) -> None:
        self.session.execute(
            sa.update(ApiToken)
            .where(col(ApiToken.user_id) == user_id, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=at)
        )

    # login attempts
    def add_attempt(self, attempt: LoginAttempt) -> None:
        self.session.add(attempt)
        self.session.flush()

    def recent_failures(self, *, since: datetime, username: str = "", client: str = "") -> int:
        """Failures by this username (or from this client) since `since` and its last success."""
        who = (
            col(LoginAttempt.username) == username
            if username
            else col(LoginAttempt.client) == client
        )
        last_success = (
            select(sa.func.max(LoginAttempt.at))
            .where(who, col(LoginAttempt.success))
            .scalar_subquery()
        )
        query = select(sa.func.count()).where(
            who,
            sa.not_(col(LoginAttempt.success)),
            col(LoginAttempt.at) >= since,
            sa.or_(last_success.is_(None), col(LoginAttempt.at) > last_success),
        )
        return int(self.session.exec(query).one())
