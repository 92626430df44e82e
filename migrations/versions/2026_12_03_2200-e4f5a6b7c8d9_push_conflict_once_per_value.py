"""push conflicts: one row per record and differing value, counted; reviewed with a decision

Revision ID: e4f5a6b7c8d9
Revises: d1e2f3a4b5c6
Create Date: 2026-12-03 22:00:00+00:00

The rows written so far (one per arrival) are merged into one per record
and value: the earliest kept, counted, last seen at the latest.
"""

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from gasbill.adapters.db.types import UTCDateTime

revision: str = "e4f5a6b7c8d9"
down_revision: str | None = "d1e2f3a4b5c6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _fingerprint(second: str) -> str:
    # as gasbill.adapters.db.repositories.readings.conflict_fingerprint, frozen here
    values: dict[str, Any] = json.loads(second)
    compared = {k: v for k, v in values.items() if k != "receive_time"} or values
    text = json.dumps(compared, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("push_conflict", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("fingerprint", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("times_seen", sa.BigInteger(), nullable=False, server_default="1")
        )
        batch_op.add_column(sa.Column("last_seen_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("status", sa.String(length=10), nullable=False, server_default="open")
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("review_reason", sa.Text(), nullable=False, server_default="")
        )
    _merge_existing()
    with op.batch_alter_table("push_conflict", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_push_conflict_kind_company_no_natural_key_fingerprint"),
            ["kind", "company_no", "natural_key", "fingerprint"],
        )


def _merge_existing() -> None:
    bind = op.get_bind()
    table = sa.table(
        "push_conflict",
        sa.column("id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("company_no", sa.String),
        sa.column("natural_key", sa.String),
        sa.column("second", sa.Text),
        sa.column("received_at", UTCDateTime(timezone=True)),
        sa.column("reviewed", sa.Boolean),
        sa.column("fingerprint", sa.String),
        sa.column("times_seen", sa.BigInteger),
        sa.column("last_seen_at", UTCDateTime(timezone=True)),
        sa.column("status", sa.String),
    )
    rows = bind.execute(sa.select(table).order_by(table.c.id)).mappings().all()
    groups: dict[tuple[str, str, str, str], list[Any]] = {}
    for row in rows:
        key = (row["kind"], row["company_no"], row["natural_key"], _fingerprint(row["second"]))
        groups.setdefault(key, []).append(row)
    for key, group in groups.items():
        kept = group[0]
        reviewed = all(r["reviewed"] for r in group)
        bind.execute(
            table.update()
            .where(table.c.id == kept["id"])
            .values(
                fingerprint=key[3],
                times_seen=len(group),
                last_seen_at=max(r["received_at"] for r in group),
                reviewed=reviewed,
                status="dismissed" if reviewed else "open",
            )
        )
        extra = [r["id"] for r in group[1:]]
        if extra:
            bind.execute(table.delete().where(table.c.id.in_(extra)))


def downgrade() -> None:
    with op.batch_alter_table("push_conflict", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("uq_push_conflict_kind_company_no_natural_key_fingerprint"), type_="unique"
        )
        for name in (
            "review_reason",
            "reviewed_at",
            "reviewed_by",
            "status",
            "last_seen_at",
            "times_seen",
            "fingerprint",
        ):
            batch_op.drop_column(name)
