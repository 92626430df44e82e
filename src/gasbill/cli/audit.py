"""`gasbill audit verify`: walk the hash chain of the audit log."""

from __future__ import annotations

import typer
from rich.console import Console

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli.options import ConfigOption, err_console, settings_from
from gasbill.cli.staff import current_engine
from gasbill.service.audit import verify_audit

app = typer.Typer(help="The audit log: verify its hash chain.", no_args_is_help=True)


@app.command("verify")
def verify_command(config: ConfigOption = None) -> None:
    """Check every entry follows from the one before; exit 1 on any break."""
    settings = settings_from(config)
    with current_engine(settings) as engine:
        result = verify_audit(UnitOfWork(engine))
    if result.ok:
        Console().print(f"audit log OK: {result.entries} entries, chain intact", highlight=False)
        return
    for found in result.breaks:
        err_console.print(
            f"[bold red]break[/] at entry {found.seq}: {found.problem}", highlight=False
        )
    err_console.print(
        f"audit log BROKEN: {len(result.breaks)} break(s) in {result.entries} entries",
        highlight=False,
    )
    raise typer.Exit(1)
