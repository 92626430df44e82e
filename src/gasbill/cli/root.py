"""The `gasbill` command: every subcommand, on one Typer app."""

from __future__ import annotations

import typer

from gasbill.cli import (
    account_changes,
    account_meter,
    account_money,
    accounts,
    audit,
    campaigns,
    commands,
    db,
    demo,
    exceptions,
    imports,
    quote,
    reconcile,
    serve,
    simulate,
    tariffs,
    true_up,
    users,
    worker,
)

app = typer.Typer(
    name="gasbill",
    help="Prepaid gas billing and ladder tariffs for IoT gas meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("quote")(quote.quote_command)
app.command("demo")(demo.demo_command)
app.add_typer(tariffs.app, name="tariff")
app.add_typer(db.app, name="db")
app.add_typer(users.app, name="user")
app.add_typer(audit.app, name="audit")
app.add_typer(accounts.app, name="account")
app.command("serve")(serve.serve_command)
app.command("worker")(worker.worker_command)
app.add_typer(imports.app, name="import")
app.command("simulate")(simulate.simulate_command)
app.command("reconcile")(reconcile.reconcile_command)
app.command("true-up")(true_up.true_up_command)
app.add_typer(commands.app, name="command")
app.add_typer(campaigns.app, name="campaign")
app.add_typer(exceptions.app, name="exceptions")
assert account_money.__name__  # adds pay, refund, adjust, close, readings to `account`
assert account_meter.__name__  # adds replace-meter to `account`
assert account_changes.__name__  # adds update and reverse to `account`


def main() -> None:
    app()
