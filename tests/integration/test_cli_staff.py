"""`gasbill db`, `gasbill user`, `gasbill account` and `gasbill serve` as an operator runs them."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.security import Argon2Passwords
from gasbill.cli import app
from gasbill.service.staff import list_users
from tests.conftest import ROOT

runner = CliRunner()


def write_config(tmp_path, url: str, extra: str = "") -> str:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[tariffs]\ndir = "{ROOT / "tariffs"}"\n{extra}',
        encoding="utf-8",
    )
    return str(path)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL", "GASBILL_APP__ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def test_db_upgrade_brings_a_new_database_to_head(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'new.db'}")
    before = runner.invoke(app, ["db", "current", "--config", config])
    assert before.exit_code == 1
    assert "gasbill db upgrade" in before.stdout

    upgraded = runner.invoke(app, ["db", "upgrade", "--config", config])
    assert upgraded.exit_code == 0, upgraded.output
    assert "(head)" in upgraded.stdout
    after = runner.invoke(app, ["db", "current", "--config", config])
    assert after.exit_code == 0, after.output
    assert "up to date" in after.stdout
    again = runner.invoke(app, ["db", "upgrade", "--config", config])
    assert again.exit_code == 0, again.output


def test_commands_refuse_a_database_that_is_behind(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'new.db'}")
    result = runner.invoke(app, ["user", "list", "--config", config])
    assert result.exit_code == 2
    assert "gasbill db upgrade" in result.stderr


@pytest.mark.db
def test_user_add_with_the_password_on_stdin(tmp_path, db_url, engine):
    config = write_config(tmp_path, db_url)
    added = runner.invoke(
        app,
        ["user", "add", "wang", "--role", "admin", "--password-stdin", "--config", config],
        input="a long password\n",
    )
    assert added.exit_code == 0, added.output
    assert "wang (admin) added" in added.stdout
    [user] = list_users(UnitOfWork(engine))
    assert (user.username, user.role) == ("wang", "admin")
    assert Argon2Passwords().verify(user.password_hash, "a long password")
    with UnitOfWork(engine) as uow:
        [entry] = list(uow.audit.entries())
    assert entry.action == "user.create"
    assert entry.actor.startswith("cli:")

    listed = runner.invoke(app, ["user", "list", "--config", config])
    assert "wang" in listed.stdout

    twice = runner.invoke(
        app,
        ["user", "add", "wang", "--role", "clerk", "--password-stdin", "--config", config],
        input="a long password\n",
    )
    assert twice.exit_code == 2
    assert "already exists" in twice.stderr


@pytest.mark.db
def test_an_admin_changes_a_role_deactivates_and_activates_from_the_terminal(
    tmp_path, db_url, engine
):
    config = write_config(tmp_path, db_url)
    for name, role in (("wang", "admin"), ("li", "clerk")):
        added = runner.invoke(
            app,
            ["user", "add", name, "--role", role, "--password-stdin", "--config", config],
            input="a long password\n",
        )
        assert added.exit_code == 0, added.output

    def user(*args: str):
        return runner.invoke(app, ["user", *args, "--config", config])

    assert "li is now auditor" in user("role", "li", "auditor").stdout
    last = user("deactivate", "wang")
    assert last.exit_code == 2 and "last active admin" in last.stderr
    assert "li deactivated" in user("deactivate", "li").stdout
    assert "li may log in again" in user("activate", "li").stdout
    unknown = user("activate", "nobody")
    assert unknown.exit_code == 2
    users = {u.username: (u.role, u.active) for u in list_users(UnitOfWork(engine))}
    assert users == {"wang": ("admin", True), "li": ("auditor", True)}
    with UnitOfWork(engine) as uow:
        actions = [e.action for e in uow.audit.entries() if e.action.startswith("user.")]
    assert actions[-3:] == ["user.role", "user.deactivate", "user.activate"]


@pytest.mark.db
def test_user_add_prompts_for_the_password_twice(tmp_path, db_url, engine):
    config = write_config(tmp_path, db_url)
    added = runner.invoke(
        app,
        ["user", "add", "li", "--role", "clerk", "--config", config],
        input="a long password\na long password\n",
    )
    assert added.exit_code == 0, added.output
    short = runner.invoke(
        app,
        ["user", "add", "zhang", "--role", "clerk", "--password-stdin", "--config", config],
        input="short\n",
    )
    assert short.exit_code == 2
    assert "password" in short.stderr
    bad_role = runner.invoke(
        app, ["user", "add", "x", "--role", "boss", "--password-stdin", "--config", config]
    )
    assert bad_role.exit_code == 2


@pytest.mark.db
def test_a_clerk_opens_an_account_and_takes_a_payment_from_the_terminal(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    opened = runner.invoke(
        app,
        [
            "account", "open", "A0001", "--customer", "王芳", "--meter", "12345678901234",
            "--company", "1001", "--tariff", "beijing-residential", "--opened", "2025-01-01",
            "--register", "12.5", "--persons", "3", "--config", config,
        ],
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    assert "account A0001 opened" in opened.stdout

    pay = ["account", "pay", "A0001", "--amount", "100.00", "--key", "receipt-1"]
    paid = runner.invoke(app, [*pay, "--config", config])
    assert paid.exit_code == 0, paid.output
    assert "prepaid now 100.00" in paid.stdout
    replayed = runner.invoke(app, [*pay, "--config", config])
    assert "prepaid now 100.00" in replayed.stdout
    other = runner.invoke(
        app, ["account", "pay", "A0001", "--amount", "50", "--key", "receipt-1", "--config", config]
    )
    assert other.exit_code == 2
    fine = runner.invoke(
        app, ["account", "pay", "A0001", "--amount", "1.001", "--key", "r2", "--config", config]
    )
    assert fine.exit_code == 2
    assert "at most 2 decimals" in fine.stderr
    for amount in ("1e3", "-5", "0x10", "1,000"):
        odd = runner.invoke(
            app, ["account", "pay", "A0001", "--amount", amount, "--key", "r3", "--config", config]
        )
        assert odd.exit_code == 2, (amount, odd.output)
        assert "at most 2 decimals" in odd.stderr
    too_much = runner.invoke(
        app, ["account", "pay", "A0001", "--amount", "5000.01", "--key", "r4", "--config", config]
    )
    assert too_much.exit_code == 2
    assert "maximum of 5000.00 yuan" in too_much.stderr

    shown = runner.invoke(app, ["account", "show", "A0001", "--config", config])
    assert shown.exit_code == 0, shown.output
    assert "12345678901234" in shown.stdout
    assert "100.00" in shown.stdout
    listed = runner.invoke(app, ["account", "list", "--config", config])
    assert "A0001" in listed.stdout
    missing = runner.invoke(app, ["account", "show", "nope", "--config", config])
    assert missing.exit_code == 2


def test_serve_refuses_the_placeholder_secret_outside_the_demo(tmp_path):
    config = write_config(
        tmp_path, f"sqlite:///{tmp_path / 'x.db'}", '[app]\nenvironment = "production"\n'
    )
    result = runner.invoke(app, ["serve", "--config", config])
    assert result.exit_code == 2
    assert "secret_key" in result.stderr


def test_serve_refuses_a_database_that_is_behind(tmp_path):
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'x.db'}")
    result = runner.invoke(app, ["serve", "--config", config])
    assert result.exit_code == 2
    assert "gasbill db upgrade" in result.stderr
