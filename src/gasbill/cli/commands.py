"""`gasbill command list|show|retry|cancel`: commands to meters, as the staff API shows them."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.cli.accounts import find, progress_table
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.service.commands.actions import cancel_command, retry_command
from gasbill.service.commands.progress import command_progress

app = typer.Typer(help="Commands to meters: list, show, retry, cancel.", no_args_is_help=True)

CommandArg = Annotated[int, typer.Argument(min=1, help="The command's id.")]


@app.command("list")
def list_command(
    account: Annotated[
        str | None, typer.Option(help="An account's commands (id or number).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Commands needing a person, or an account's commands (newest first)."""
    settings = settings_from(config)
    with current_services(settings) as services:
        account_id = None
        if account is not None:
            account_id = find(services.uow(), account).id
        with services.uow() as uow:
            store = CommandStore(uow.session)
            rows = (
                store.of_account(account_id, limit)
                if account_id
                else store.needing_attention(limit)
            )
            views = [command_progress(c) for c in rows]
    title = f"commands of account {account}" if account else "commands needing attention"
    Console().print(progress_table(title, views))


@app.command("show")
def show_command(command: CommandArg, config: ConfigOption = None) -> None:
    """One command: its stage, the reason and its next attempt."""
    settings = settings_from(config)
    with current_services(settings) as services, services.uow() as uow:
        found = CommandStore(uow.session).get(command)
        if found is None:
            fail(f"no command {command}")
        view = command_progress(found)
        meter, account_id = found.meter_comm_no, found.account_id
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"command {command} to meter {meter} (account {account_id})")
    console.print(progress_table("", [view]))


@app.command("retry")
def retry_cmd(command: CommandArg, config: ConfigOption = None) -> None:
    """Give a command that needs a person another go (the platform's Retry, or a resend);
    a top-up the meter refused is topped up again with the same amount from prepaid."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            done = retry_command(
                services.uow(),
                services.platform(),
                command,
                actor=terminal_actor(),
                now=services.now(),
                policy=services.command_policy,
            )
        except GasbillError as exc:
            fail(str(exc))
        view = command_progress(done)
    again = f" (refused: topped up again as command {done.id})" if done.id != command else ""
    Console(highlight=False, soft_wrap=True).print(f"command {command}{again}: {view['stage']}")


@app.command("cancel")
def cancel_cmd(command: CommandArg, config: ConfigOption = None) -> None:
    """Cancel a command not yet applied (its held money goes back to prepaid)."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            done = cancel_command(
                services.uow(),
                services.platform(),
                command,
                actor=terminal_actor(),
                now=services.now(),
            )
        except GasbillError as exc:
            fail(str(exc))
        view = command_progress(done)
    Console(highlight=False, soft_wrap=True).print(f"command {command}: {view['stage']}")
