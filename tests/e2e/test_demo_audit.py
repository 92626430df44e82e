"""`gasbill demo --exit` then `gasbill audit verify` on its database: OK, and anchored."""

from __future__ import annotations

from typer.testing import CliRunner

from gasbill.cli import app
from tests.conftest import ROOT

runner = CliRunner()


def test_the_demos_audit_log_verifies(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f'[tariffs]\ndir = "{ROOT / "tariffs"}"\n', encoding="utf-8")
    demo = runner.invoke(
        app, ["demo", "--exit", "--meters", "2", "--days", "3", "--config", str(config)]
    )
    assert demo.exit_code == 0, demo.output
    monkeypatch.setenv("GASBILL_DATABASE__URL", "sqlite:///var/demo.db")
    verified = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert verified.exit_code == 0, verified.output
    assert "audit log OK" in verified.stdout
    assert "anchored:" in verified.stdout
    payments = verified.stdout  # the entries the payments wrote (with +08:00 times) are in it
    assert " 0 entries" not in payments
