"""`gasbill audit verify` on a real database: an intact chain passes, a tampered row is found."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from gasbill.adapters.db.engine import is_sqlite
from gasbill.cli import app
from gasbill.service.accounts import create_customer

pytestmark = pytest.mark.db

runner = CliRunner()


@pytest.fixture
def config(tmp_path, db_url, monkeypatch):
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.delenv("GASBILL_DATABASE__URL", raising=False)
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{db_url}"\n', encoding="utf-8")
    return path


def verify(config):
    return runner.invoke(app, ["audit", "verify", "--config", str(config)])


def tamper(engine, sql: str) -> None:
    """Change audit_log behind the application's back, as an intruder with SQL access would."""
    with engine.begin() as conn:
        if is_sqlite(engine):
            conn.execute(sa.text("DROP TRIGGER audit_log_no_update"))
            conn.execute(sa.text(sql))
            return
        conn.execute(sa.text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        try:
            conn.execute(sa.text(sql))
        finally:
            conn.execute(sa.text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))


def test_an_intact_chain_passes_and_a_tampered_row_is_found(uow, engine, config):
    for name in ("王芳", "李娜", "张伟"):
        create_customer(uow, name=name, actor="clerk1")
    intact = verify(config)
    assert intact.exit_code == 0, intact.output
    assert "OK" in intact.stdout
    assert "3 entries" in intact.stdout

    tamper(engine, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    broken = verify(config)
    assert broken.exit_code == 1
    assert "entry 2" in broken.stderr
    assert "does not match its hash" in broken.stderr
    assert "BROKEN" in broken.stderr


def test_an_empty_log_passes(config):
    result = verify(config)
    assert result.exit_code == 0, result.output
    assert "0 entries" in result.stdout


def test_the_database_triggers_refuse_edits_through_the_application(engine, uow):
    create_customer(uow, name="王芳", actor="clerk1")
    with pytest.raises(sa.exc.DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory'"))
