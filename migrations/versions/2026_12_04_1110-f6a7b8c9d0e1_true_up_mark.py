"""true-up marks: where each account's true-up stands, and what billing re-rated since

Revision ID: f6a7b8c9d0e1
Revises: f5a6b7c8d9e0
Create Date: 2026-12-04 11:10:00+00:00

New and empty: an account without a mark is trued up from its start, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from gasbill.adapters.db.types import UTCDateTime

revision: str = "f6a7b8c9d0e1"
down_revision: str | None = "f5a6b7c8d9e0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "true_up_mark",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("start_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("basis", sa.String(length=64), nullable=False),
        sa.Column("cycle_key", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("state_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("state_register", sa.BigInteger(), nullable=False),
        sa.Column("state_cycle_start", UTCDateTime(timezone=True), nullable=False),
        sa.Column("state_cycle_end", UTCDateTime(timezone=True), nullable=False),
        sa.Column("state_version", sa.Integer(), nullable=False),
        sa.Column("state_used", sa.BigInteger(), nullable=False),
        sa.Column("state_cost", sa.BigInteger(), nullable=False),
        sa.Column("billed_through", UTCDateTime(timezone=True), nullable=True),
        sa.Column("rebilled_from", sa.Date(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_true_up_mark_account_id_account")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_true_up_mark")),
    )


def downgrade() -> None:
    op.drop_table("true_up_mark")
