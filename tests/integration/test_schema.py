"""The migrations build exactly the schema the tables describe, on each database."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current, head_revision


def test_migrated_schema_matches_the_tables(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_a_database_at_head_is_accepted_and_an_empty_one_refused(engine, tmp_path):
    ensure_current(engine)
    empty = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(DatabaseBehind, match="gasbill db upgrade"):
        ensure_current(empty)
    assert head_revision() is not None


def test_the_audit_log_is_append_only_in_the_database(engine):
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_log (at, actor, action, entity, entity_id, before, after, "
                "prev_hash, hash) VALUES (:at, 'a', 'x', 'e', '1', 'null', 'null', 'p', 'h')"
            ),
            {"at": "2025-01-01 00:00:00"},
        )
    for statement in ("UPDATE audit_log SET actor = 'b'", "DELETE FROM audit_log"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.execute(sa.text(statement))
