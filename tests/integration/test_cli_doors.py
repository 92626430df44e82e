"""The clerk's doors from a terminal: a meter opened remotely, a payment that becomes a
top-up, refunds, adjustments, commands, campaigns, readings and a closing."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli import app
from gasbill.domain.commands import CtrlType
from tests.integration.test_cli_staff import write_config

runner = CliRunner()
pytestmark = pytest.mark.db

OPEN = [
    "account", "open", "M0001", "--customer", "李雷", "--meter", "12345678901234",
    "--company", "1001", "--tariff", "beijing-residential", "--mode", "meter",
    "--register", "3", "--persons", "3", "--pay", "200.00",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("GASBILL_CONFIG", "GASBILL_DATABASE__URL", "GASBILL_APP__ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def run(config, *args):
    return runner.invoke(app, [*args, "--config", config])


def test_a_meter_mode_account_opened_and_paid_from_the_terminal_reaches_the_meter(
    tmp_path, db_url, engine
):
    config = write_config(tmp_path, db_url)
    opened = run(config, *OPEN)
    assert opened.exit_code == 0, opened.output
    assert "openaccount queued as command" in opened.stdout

    paid = run(config, "account", "pay", "M0001", "--amount", "50.00", "--key", "r-1")
    assert paid.exit_code == 0, paid.output
    assert "top-up" in paid.stdout and "queued" in paid.stdout
    with UnitOfWork(engine) as uow:
        commands = CommandStore(uow.session).of_account(1)
        assert sorted(c.ctrl_type for c in commands) == sorted(
            [CtrlType.OPEN_ACCOUNT, CtrlType.REMOTE_CHARGE]
        )

    shown = run(config, "account", "show", "--meter", "12345678901234")
    assert shown.exit_code == 0, shown.output
    assert "account opening" in shown.stdout and "top-up" in shown.stdout
    listed = run(config, "command", "list", "--account", "M0001")
    assert listed.exit_code == 0, listed.output
    assert "account opening" in listed.stdout
    one = run(config, "command", "show", "1")
    assert one.exit_code == 0 and "queued" in one.stdout
    assert run(config, "command", "show", "99").exit_code == 2
    refused = run(config, "command", "retry", "1")  # queued, not needing attention
    assert refused.exit_code == 2 and "attention" in refused.stderr
    cancelled = run(config, "command", "cancel", "2")
    assert cancelled.exit_code == 0, cancelled.output
    assert "cancelled" in cancelled.stdout


def test_refund_adjust_readings_close_and_campaigns_from_the_terminal(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    opened = run(
        config, "account", "open", "S0001", "--customer", "韩梅梅", "--meter", "12345678900001",
        "--company", "1001", "--tariff", "beijing-residential", "--pay", "80.00",
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    refund = run(
        config, "account", "refund", "S0001", "--amount", "10.00", "--reason", "overpaid",
        "--key", "rf-1",
    )  # fmt: skip
    assert refund.exit_code == 0, refund.output
    assert "prepaid now 70.00" in refund.stdout
    adjusted = run(
        config, "account", "adjust", "S0001", "--amount", "-5.00", "--reason", "voucher",
        "--key", "adj-1",
    )  # fmt: skip
    assert adjusted.exit_code == 0, adjusted.output
    assert run(config, "account", "readings", "S0001").exit_code == 0
    closed = run(config, "account", "close", "S0001", "--final", "9.5")
    assert closed.exit_code == 0, closed.output
    # 9.5 m³ since the opening at 2.61 yuan billed first: 65.00 - 24.80 paid back
    assert "24.80 yuan billed up to it; 40.20 yuan paid back" in closed.stdout
    assert run(config, "account", "close", "S0001").exit_code == 2
    campaigns = run(config, "campaign", "list")
    assert campaigns.exit_code == 0, campaigns.output
    assert run(config, "campaign", "show", "3").exit_code == 2


def test_an_openings_first_payment_from_the_terminal_keeps_the_configured_maxima(
    tmp_path, db_url, engine
):
    money = "[money]\nmax_payment_yuan = 500\nmax_top_up_yuan = 100\n"
    config = write_config(tmp_path, db_url, money)
    for pay in ("500.01", "100.01"):  # above the payment, then the top-up maximum
        refused = run(config, *OPEN[:-1], pay)
        assert refused.exit_code != 0
        assert "above the maximum" in refused.output
    with UnitOfWork(engine) as uow:
        assert uow.accounts.by_number("M0001") is None
        assert CommandStore(uow.session).of_account(1) == []
    assert run(config, *OPEN[:-1], "100.00").exit_code == 0


def test_a_meter_is_replaced_from_the_terminal(tmp_path, db_url):
    config = write_config(tmp_path, db_url)
    opened = run(
        config, "account", "open", "S0002", "--customer", "韩梅梅", "--meter", "12345678900002",
        "--company", "1001", "--tariff", "beijing-residential", "--register", "3",
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    replaced = run(
        config, "account", "replace-meter", "S0002", "--new-meter", "12345678900003",
        "--final", "40.5", "--opening", "0.01",
    )  # fmt: skip
    assert replaced.exit_code == 0, replaced.output
    assert "old meter closed at 40.5 m³, meter 12345678900003 bound" in replaced.stdout
    shown = run(config, "account", "show", "--meter", "12345678900003")
    assert shown.exit_code == 0 and "S0002" in shown.stdout
    below = run(
        config, "account", "replace-meter", "S0002", "--new-meter", "12345678900004",
        "--final", "0.001",
    )  # fmt: skip
    assert below.exit_code == 2 and "below the old meter's opening" in below.stderr


def test_a_closed_account_takes_from_the_terminal_only_what_it_owes(tmp_path, db_url):
    """Paid 10.00, closed at 9.5 m³ (from 0, at 2.61 yuan): 24.80 billed, 14.80 owed."""
    config = write_config(tmp_path, db_url)
    opened = run(
        config, "account", "open", "S0004", "--customer", "韩梅梅", "--meter", "12345678900004",
        "--company", "1001", "--tariff", "beijing-residential", "--pay", "10.00",
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    closed = run(config, "account", "close", "S0004", "--final", "9.5")
    assert closed.exit_code == 0 and "24.80 yuan billed" in closed.stdout, closed.output
    assert "0.00 yuan paid back by cash; 14.80 yuan still owed" in closed.stdout
    assert "moved from" not in closed.stdout  # system mode: only prepaid, nothing netted

    def pay(amount: str, key: str):
        return run(config, "account", "pay", "S0004", "--amount", amount, "--key", key)

    too_much = pay("14.81", "c-1")
    assert too_much.exit_code == 2
    assert "closed and owes 14.80 yuan (1480 fen): a payment of up to 14.80 yuan settles it" in (
        too_much.stderr
    )
    part = pay("10.00", "c-2")
    assert part.exit_code == 0, part.output
    assert "prepaid now -4.80; closed, it owes 4.80 now" in part.stdout
    rest = pay("4.80", "c-3")
    assert rest.exit_code == 0 and "closed, settled" in rest.stdout, rest.output
    nothing = pay("0.01", "c-4")
    assert nothing.exit_code == 2
    assert "account S0004 is closed: it takes no payment" in nothing.stderr
    again = pay("10.00", "c-2")
    assert again.exit_code == 0 and "already taken with this key" in again.stdout, again.output
