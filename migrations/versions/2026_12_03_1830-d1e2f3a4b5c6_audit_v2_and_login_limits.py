"""audit entries keep their hash scheme; TRUNCATE of audit_log refused; login limit counters

Revision ID: d1e2f3a4b5c6
Revises: c3d4e5f6a7b8
Create Date: 2026-12-03 18:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gasbill.adapters.db.types import UTCDateTime

revision: str = "d1e2f3a4b5c6"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # every entry written so far is of the first scheme and is checked with it
    op.add_column(
        "audit_log",
        sa.Column("hash_version", sa.SmallInteger(), nullable=False, server_default="1"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # row triggers do not see TRUNCATE: a statement trigger refuses it
        op.execute(
            "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
        )
    op.create_table(
        "login_limit",
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("scope IN ('username', 'client')", name=op.f("ck_login_limit_scope")),
        sa.PrimaryKeyConstraint("scope", "key", name=op.f("pk_login_limit")),
    )


def downgrade() -> None:
    op.drop_table("login_limit")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
    op.execute("ALTER TABLE audit_log DROP COLUMN hash_version")  # keeps SQLite's triggers
