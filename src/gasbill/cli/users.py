"""`gasbill user …`: staff users from a terminal (the first admin is made here)."""

from __future__ import annotations

import enum
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.security import Argon2Passwords
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_engine, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.service import staff

app = typer.Typer(help="Staff users: add, list.", no_args_is_help=True)


class RoleChoice(enum.StrEnum):
    clerk = "clerk"
    auditor = "auditor"
    admin = "admin"


@app.command("add")
def add_command(
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[RoleChoice, typer.Option(help="What the user may do.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add a staff user; the password is asked for (twice) unless --password-stdin."""
    settings = settings_from(config)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    with current_engine(settings) as engine:
        try:
            user = staff.add_user(
                UnitOfWork(engine),
                username=username,
                password=password,
                role=str(role),
                passwords=Argon2Passwords(),
                actor=terminal_actor(),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console().print(f"user {user.username} ({user.role}) added, id {user.id}", highlight=False)


@app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every staff user with their role and whether they can log in."""
    settings = settings_from(config)
    with current_engine(settings) as engine:
        users = staff.list_users(UnitOfWork(engine))
    table = Table(title="Staff users")
    for column in ("id", "username", "role", "active", "created"):
        table.add_column(column)
    for user in users:
        table.add_row(
            str(user.id),
            user.username,
            user.role,
            "yes" if user.active else "no",
            user.created_at.isoformat(timespec="seconds"),
        )
    Console().print(table)
