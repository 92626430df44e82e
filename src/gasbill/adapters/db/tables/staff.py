"""Staff users, their sessions, login attempts, and the hash-chained audit log."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from gasbill.adapters.db.tables.base import BIG_ID, instant, now_column


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"
    __table_args__ = (sa.CheckConstraint("role IN ('clerk', 'auditor', 'admin')", name="role"),)

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=10)
    active: bool = True
    created_at: datetime = now_column()


class ApiToken(SQLModel, table=True):
    """A bearer token, stored only as its SHA-256."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    issued_at: datetime = now_column()
    expires_at: datetime = instant()
    revoked_at: datetime | None = instant(default=None)


class LoginAttempt(SQLModel, table=True):
    __tablename__ = "login_attempt"
    __table_args__ = (
        sa.Index("ix_login_attempt_username_at", "username", "at"),
        sa.Index("ix_login_attempt_client_at", "client", "at"),  # the per-client limit
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64)
    client: str = Field(default="", max_length=64)
    at: datetime = now_column()
    success: bool = False


class LoginLimit(SQLModel, table=True):
    """Failed logins in the current window, for one username or one client address.

    Counted by one atomic upsert before the password is checked, so concurrent
    attempts can never pass more checks than the limit allows.
    """

    __tablename__ = "login_limit"
    __table_args__ = (sa.CheckConstraint("scope IN ('username', 'client')", name="scope"),)

    scope: str = Field(max_length=10, primary_key=True)
    key: str = Field(max_length=64, primary_key=True)
    failures: int = 0
    window_start: datetime = instant()


class AuditEntry(SQLModel, table=True):
    """One change, chained to the previous entry by hash; never updated or deleted."""

    __tablename__ = "audit_log"

    seq: int | None = Field(default=None, sa_type=BIG_ID, primary_key=True)
    at: datetime = instant()
    actor: str = Field(max_length=100)
    action: str = Field(max_length=100)
    entity: str = Field(max_length=50)
    entity_id: str = Field(default="", max_length=100)
    before: str = Field(default="null", sa_type=sa.Text)  # JSON
    after: str = Field(default="null", sa_type=sa.Text)  # JSON
    prev_hash: str = Field(max_length=64, unique=True)  # a fork would repeat one
    hash: str = Field(max_length=64, unique=True)
    # the hash scheme it was written with (domain/audit.py): 1 before the anchored chain
    hash_version: int = Field(
        default=1, sa_type=sa.SmallInteger, sa_column_kwargs={"server_default": "1"}
    )
