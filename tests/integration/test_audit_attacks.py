"""The audit log against someone with SQL access who disables its triggers, on both databases.

Each attack is made as an intruder would (triggers off, rows deleted, the table
emptied, the chain recomputed) and `gasbill audit verify`, with the head
anchored in a file outside the database, must say BROKEN.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from gasbill.adapters.db.engine import is_sqlite
from gasbill.adapters.db.repositories.audit import with_audit_key
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli import app
from gasbill.domain.audit import GENESIS, canonical_json, entry_hash

pytestmark = pytest.mark.db

runner = CliRunner()
AUDIT_KEY = "k" * 40
BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2025, 3, 1, 9, 30, tzinfo=BEIJING)


@pytest.fixture
def config(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.delenv("GASBILL_DATABASE__URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(
        f'[app]\naudit_key = "{AUDIT_KEY}"\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[audit]\nanchor_file = "{tmp_path / "audit.anchor"}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
def keyed(engine: Engine) -> Engine:
    return with_audit_key(engine, AUDIT_KEY)


def cli(config, *args: str):
    return runner.invoke(app, [*args, "--config", str(config)])


def write(engine: Engine, n: int, *, start: int = 0) -> None:
    """n entries written with Beijing times, as the clerk's payments are."""
    for i in range(start, start + n):
        with UnitOfWork(engine) as uow:
            uow.audit.record(
                actor="clerk1",
                action="payment.take",
                entity="account",
                entity_id=i,
                before={"balance_fen": i * 100},
                after={"balance_fen": i * 100 + 5000, "note": "缴费"},
                at=T0 + timedelta(minutes=i),
            )
            uow.commit()


@pytest.fixture
def triggers_off(engine: Engine) -> Iterator[None]:
    """The intruder disables the append-only triggers (an admin's right on PostgreSQL)."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            for name in ("audit_log_no_update", "audit_log_no_delete"):
                conn.execute(sa.text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
    yield
    if not is_sqlite(engine):
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER USER"))


def sql(engine: Engine, *statements: str) -> None:
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))


def assert_broken(config, *phrases: str) -> str:
    result = cli(config, "audit", "verify")
    assert result.exit_code == 1, result.output
    assert "BROKEN" in result.stderr
    text = " ".join(result.stderr.split())
    for phrase in phrases:
        assert phrase in text
    return text


def test_entries_written_with_beijing_times_verify_and_get_anchored(keyed, config):
    write(keyed, 3)
    anchored = cli(config, "audit", "anchor")
    assert anchored.exit_code == 0, anchored.output
    assert "anchored seq 3 (3 entries)" in anchored.stdout
    assert "nothing new" in cli(config, "audit", "anchor").stdout
    result = cli(config, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "OK: 3 entries" in result.stdout
    assert "the newest seq 3" in " ".join(result.stdout.split())


def test_deleting_the_newest_entries_is_detected(keyed, config, engine, triggers_off):
    write(keyed, 5)
    assert cli(config, "audit", "anchor").exit_code == 0
    sql(engine, "DELETE FROM audit_log WHERE seq > 3")
    assert_broken(config, "ends at seq 3", "newest entries were deleted")


def test_emptying_the_table_is_detected(keyed, config, engine, triggers_off):
    write(keyed, 4)
    assert cli(config, "audit", "anchor").exit_code == 0
    if is_sqlite(engine):
        sql(engine, "DELETE FROM audit_log")
    else:
        sql(engine, "TRUNCATE audit_log")
    assert_broken(config, "ends at seq 0 (0 entries)")


def test_truncate_is_refused_on_postgresql_while_the_triggers_stand(keyed, engine):
    if is_sqlite(engine):
        pytest.skip("SQLite has no TRUNCATE (DELETE is refused by its trigger)")
    write(keyed, 2)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        sql(engine, "TRUNCATE audit_log")
    with UnitOfWork(keyed) as uow:
        assert uow.audit.head() is not None


def recompute_first_scheme(engine: Engine) -> None:
    """Rewrite every entry's content and re-chain it with SHA-256, as the first scheme did."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_log ORDER BY seq")).mappings().all()
    prev = GENESIS
    with engine.begin() as conn:
        for row in rows:
            after = canonical_json({"balance_fen": 1})  # the money taken disappears
            at = row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"])
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            digest = entry_hash(
                at=at,
                actor=row["actor"],
                action=row["action"],
                entity=row["entity"],
                entity_id=row["entity_id"],
                before=row["before"],
                after=after,
                prev_hash=prev,
            )
            conn.execute(
                sa.text(
                    "UPDATE audit_log SET after = :after, prev_hash = :prev, hash = :hash, "
                    "hash_version = 1 WHERE seq = :seq"
                ),
                {
                    "after": after,
                    "prev": "tmp" + str(row["seq"]),
                    "hash": "t" + str(row["seq"]),
                    "seq": row["seq"],
                },
            )
            conn.execute(
                sa.text("UPDATE audit_log SET prev_hash = :prev, hash = :hash WHERE seq = :seq"),
                {"prev": prev, "hash": digest, "seq": row["seq"]},
            )
            prev = digest


def test_recomputing_the_whole_chain_is_detected(keyed, config, engine, triggers_off):
    write(keyed, 4)
    assert cli(config, "audit", "anchor").exit_code == 0
    recompute_first_scheme(engine)
    assert_broken(config, "differs from the entry anchored")


def test_a_changed_entry_fails_its_mac_even_unanchored(keyed, config, engine, triggers_off):
    write(keyed, 3)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET after = :after"), {"after": '{"balance_fen":1}'})
    assert_broken(config, "does not match its hash", "audit key")


def test_an_old_chain_with_plus_eight_times_still_verifies_and_continues(keyed, config, engine):
    """Entries of the first scheme, hashed with +08:00 times and read back in UTC."""
    prev = GENESIS
    with engine.begin() as conn:
        for i in range(3):
            at = T0 + timedelta(minutes=i)
            before, after = canonical_json({"n": i}), canonical_json(None)
            digest = entry_hash(
                at=at,
                actor="clerk1",
                action="payment.take",
                entity="account",
                entity_id=str(i),
                before=before,
                after=after,
                prev_hash=prev,
            )
            conn.execute(
                sa.text(
                    "INSERT INTO audit_log (at, actor, action, entity, entity_id, before, after, "
                    "prev_hash, hash) VALUES (:at, 'clerk1', 'payment.take', 'account', :id, "
                    ":before, :after, :prev, :hash)"
                ),
                {
                    "at": at.astimezone(UTC).replace(tzinfo=None) if is_sqlite(engine) else at,
                    "id": str(i),
                    "before": before,
                    "after": after,
                    "prev": prev,
                    "hash": digest,
                },
            )
            prev = digest
    write(keyed, 2, start=10)
    result = cli(config, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "OK: 5 entries" in result.stdout
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT hash_version FROM audit_log ORDER BY seq"))
        assert [v for (v,) in versions] == [1, 1, 1, 2, 2]


def test_the_anchor_job_writes_the_head_only_when_it_moved(keyed, tmp_path, db_url):
    from gasbill.adapters.audit_anchor import AnchorFile
    from gasbill.service.audit import anchor_head

    anchors = AnchorFile(tmp_path / "a" / "anchor")
    assert anchor_head(UnitOfWork(keyed), anchors, now=T0) is None  # an empty log
    write(keyed, 2)
    first = anchor_head(UnitOfWork(keyed), anchors, now=T0)
    assert first is not None and first.entries == 2
    assert anchor_head(UnitOfWork(keyed), anchors, now=T0) is None
    write(keyed, 1, start=5)
    assert anchor_head(UnitOfWork(keyed), anchors, now=T0) is not None
    assert len(anchors.read().anchors) == 2


def test_an_edited_anchor_file_is_found(keyed, config, tmp_path):
    write(keyed, 2)
    assert cli(config, "audit", "anchor").exit_code == 0
    path = tmp_path / "audit.anchor"
    line = path.read_text(encoding="utf-8")
    path.write_text(line.replace('"seq":2', '"seq":1') + "garbage\n", encoding="utf-8")
    assert_broken(config, "not sealed by the audit key", "line 2 of the anchor file")


def test_a_different_audit_key_is_noticed(keyed, config, tmp_path, db_url):
    write(keyed, 2)
    other = tmp_path / "other.toml"
    other.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")  # the demo key
    result = runner.invoke(app, ["audit", "verify", "--config", str(other)])
    assert result.exit_code == 1
    assert "or the audit key" in " ".join(result.stderr.split())
