"""`gasbill db …`: bring the database's schema to the code's, and say where it stands."""

from __future__ import annotations

import typer
from rich.console import Console

from gasbill.adapters.db.migrations import current_revision, head_revision, upgrade
from gasbill.bootstrap import bootstrap
from gasbill.cli.options import ConfigOption, fail, settings_from

app = typer.Typer(help="The database schema: upgrade, current.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command(config: ConfigOption = None) -> None:
    """Apply every migration the database lacks (creates the database if needed)."""
    settings = settings_from(config)
    try:
        upgrade(settings.database.url)
    except Exception as exc:  # a driver or migration error: say it plainly
        fail(f"upgrade failed: {exc}", code=1)
    Console().print(f"database at revision {head_revision()} (head)", highlight=False)


@app.command("current")
def current_command(config: ConfigOption = None) -> None:
    """The database's revision and the code's; exits 1 if the database is not at head."""
    settings = settings_from(config)
    services = bootstrap(settings)
    try:
        current = current_revision(services.engine)
    except Exception as exc:
        fail(f"cannot read the database: {exc}", code=1)
    finally:
        services.close()
    head = head_revision()
    console = Console(highlight=False)
    console.print(f"database: {current or 'empty (no revision)'}")
    console.print(f"code:     {head}")
    if current != head:
        console.print("behind: run `gasbill db upgrade`")
        raise typer.Exit(1)
    console.print("up to date")
