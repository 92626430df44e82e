"""`gasbill account update|reverse` and `gasbill exceptions resolve`: the API's PATCH of an
account, its reversal of a transfer and its resolution of an exception, from a terminal."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli import app
from gasbill.service import ledger
from gasbill.service.ports import NewException
from tests.integration.test_cli_staff import write_config

runner = CliRunner()
pytestmark = pytest.mark.db

OPEN = [
    "account", "open", "S0001", "--customer", "韩梅梅", "--meter", "12345678900001",
    "--company", "1001", "--tariff", "beijing-residential", "--pay", "80.00",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL", "GASBILL_APP__ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def run(config, *args):
    return runner.invoke(app, [*args, "--config", config])


def thresholds(engine):
    with UnitOfWork(engine) as uow:
        account = uow.accounts.by_number("S0001")
        assert account is not None
        return (account.persons, account.warning_fen, account.cutoff_fen, account.reopen_fen)


def status_of(engine):
    with UnitOfWork(engine) as uow:
        account = uow.accounts.by_number("S0001")
        assert account is not None
        return account.status


def audit_count(engine):
    with UnitOfWork(engine) as uow:
        return len(list(uow.audit.entries()))


def test_an_account_is_updated_from_the_terminal_and_bad_changes_keep_nothing(
    tmp_path, db_url, engine
):
    config = write_config(tmp_path, db_url)
    assert run(config, *OPEN).exit_code == 0

    updated = run(
        config, "account", "update", "S0001", "--persons", "4", "--warning", "30.00",
        "--cutoff", "-5.00", "--reopen", "10.00",
    )  # fmt: skip

    assert updated.exit_code == 0, updated.output
    assert "4 persons, warning 30.00, cut-off -5.00, reopen 10.00, active" in updated.stdout
    assert thresholds(engine) == (4, 3_000, -500, 1_000)
    for args, why in [
        (["--cutoff", "5.00"], "the cut-off must be ≤ 0"),
        (["--reopen", "1.005"], "--reopen must be yuan with at most 2 decimals"),
        (["--status", "closed"], "close the account with `gasbill account close S0001`"),
        (["--status", "active", "--persons", "2"], "a closed account is not reopened"),
        (["--tariff", "no-such-tariff"], "no-such-tariff"),
        ([], "nothing to change"),
    ]:
        refused = run(config, "account", "update", "S0001", *args)
        assert refused.exit_code == 2, (args, refused.output)
        assert why in refused.stderr, (args, refused.stderr)
    assert thresholds(engine) == (4, 3_000, -500, 1_000)  # nothing kept
    assert run(config, "account", "update", "S9999", "--persons", "2").exit_code == 2


def test_the_status_is_not_updated_from_the_terminal_and_a_closed_account_is_not_changed(
    tmp_path, db_url, engine
):
    """`--status` is gone from `account update` (hidden, refused pointing to `account close`);
    once `account close` settled the account, an update is refused and keeps nothing."""
    config = write_config(tmp_path, db_url)
    assert run(config, *OPEN).exit_code == 0
    helped = run(config, "account", "update", "--help")
    assert helped.exit_code == 0 and "--status" not in helped.stdout
    audited = audit_count(engine)

    refused = run(config, "account", "update", "S0001", "--status", "closed")

    assert refused.exit_code == 2, refused.output
    assert "--status is not changed by an update" in refused.stderr
    assert "`gasbill account close S0001`" in refused.stderr
    assert (status_of(engine), audit_count(engine)) == ("active", audited)
    closed = run(config, "account", "close", "S0001", "--final", "20.000")
    assert closed.exit_code == 0, closed.output
    audited = audit_count(engine)
    for args, why in [
        (["--persons", "2"], "account S0001 is closed: its closure settled it"),
        (["--tariff", "shanghai-residential"], "account S0001 is closed"),
        (["--status", "active"], "a closed account is not reopened"),
    ]:
        again = run(config, "account", "update", "S0001", *args)
        assert again.exit_code == 2, (args, again.output)
        assert why in again.stderr, (args, again.stderr)
    assert status_of(engine) == "closed"
    assert thresholds(engine)[0] == 1  # the persons it was opened with
    assert audit_count(engine) == audited


def test_a_transfer_is_reversed_once_from_the_terminal(tmp_path, db_url, engine):
    config = write_config(tmp_path, db_url)
    assert run(config, *OPEN).exit_code == 0
    adjusted = run(
        config, "account", "adjust", "S0001", "--amount", "-5.00", "--reason", "voucher",
        "--key", "adj-1",
    )  # fmt: skip
    transfer = re.search(r"adjustment (\S+):", adjusted.stdout)
    assert adjusted.exit_code == 0 and transfer, adjusted.output

    reversed_ = run(
        config, "account", "reverse", transfer[1], "--reason", "keyed twice", "--key", "rv-1"
    )

    assert reversed_.exit_code == 0, reversed_.output
    assert f"of transfer {transfer[1]}: 5.00 yuan back" in reversed_.stdout
    with UnitOfWork(engine) as uow:
        account = uow.accounts.by_number("S0001")
        assert account is not None and account.id is not None
    prepaid = ledger.account_balances(UnitOfWork(engine), account.id)["prepaid"]
    assert prepaid.available == 8_000  # 80.00 paid, 5.00 taken, 5.00 given back
    again = run(config, "account", "reverse", transfer[1], "--reason", "again", "--key", "rv-2")
    assert again.exit_code == 2, again.output
    unknown = run(config, "account", "reverse", "no-such-id", "--reason", "x", "--key", "rv-3")
    assert unknown.exit_code == 2, unknown.output
    assert ledger.account_balances(UnitOfWork(engine), account.id)["prepaid"].available == 8_000


def test_an_exception_is_resolved_from_the_terminal_once(tmp_path, db_url, engine):
    config = write_config(tmp_path, db_url)
    assert run(config, "db", "upgrade").exit_code == 0
    with UnitOfWork(engine) as uow:
        uow.exceptions.add(
            NewException(
                kind="unknown_meter",
                company_no="1001",
                meter_comm_no="12345678909999",
                reading_at=datetime(2025, 6, 1, tzinfo=UTC),
                detail="no account for meter 12345678909999",
                at=datetime(2025, 6, 1, 1, tzinfo=UTC),
            )
        )
        uow.commit()
        (opened,) = uow.exceptions.find(status="open")
    assert run(config, "exceptions", "resolve", str(opened.id), "--resolution", " ").exit_code == 2

    resolved = run(
        config, "exceptions", "resolve", str(opened.id), "--resolution", "meter bound to D0042"
    )

    assert resolved.exit_code == 0, resolved.output
    assert "(unknown_meter) resolved: meter bound to D0042" in resolved.stdout
    with UnitOfWork(engine) as uow:
        row = uow.exceptions.get(opened.id or 0)
        assert row is not None and (row.status, row.resolution) == (
            "resolved",
            "meter bound to D0042",
        )
    twice = run(config, "exceptions", "resolve", str(opened.id), "--resolution", "again")
    assert twice.exit_code == 2, twice.output
    assert run(config, "exceptions", "resolve", "999", "--resolution", "x").exit_code == 2
