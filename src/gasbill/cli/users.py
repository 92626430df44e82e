"""`gasbill user …`: staff users from a terminal (the first admin is made here).

`role`, `deactivate`, `activate`, `unlock` and `password` are the admin's (the same use
cases as the staff API's routes); `change-password` is a user's own change, proven by
the current one.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.security import Argon2Passwords
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_engine, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.service import credentials, staff
from gasbill.service.ports import StaffUserRecord

app = typer.Typer(
    help="Staff users: add, list, change a role, deactivate or activate, unlock, reset or "
    "change a password.",
    no_args_is_help=True,
)


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


def _change_user(
    username: str, config: Path | None, change: Callable[[UnitOfWork, int, str], StaffUserRecord]
) -> StaffUserRecord:
    """Find the user by name and apply one of the admin's changes, as the terminal's actor."""
    settings = settings_from(config)
    with current_engine(settings) as engine:
        try:
            user = credentials.find_user(UnitOfWork(engine), username)
            assert user.id is not None
            return change(UnitOfWork(engine), user.id, terminal_actor())
        except GasbillError as exc:
            fail(str(exc))


@app.command("role")
def role_command(
    username: Annotated[str, typer.Argument(help="Whose role to change.")],
    role: Annotated[RoleChoice, typer.Argument(help="The new role.")],
    config: ConfigOption = None,
) -> None:
    """Change a user's role (the last active admin keeps theirs)."""
    user = _change_user(
        username,
        config,
        lambda uow, uid, actor: staff.change_role(uow, uid, str(role), actor=actor),
    )
    Console().print(f"user {user.username} is now {user.role}", highlight=False)


@app.command("deactivate")
def deactivate_command(
    username: Annotated[str, typer.Argument(help="Who may no longer log in.")],
    config: ConfigOption = None,
) -> None:
    """Stop a user logging in; every token they hold stops working."""
    user = _change_user(
        username, config, lambda uow, uid, actor: staff.deactivate_user(uow, uid, actor=actor)
    )
    Console().print(f"user {user.username} deactivated; their tokens are revoked", highlight=False)


@app.command("activate")
def activate_command(
    username: Annotated[str, typer.Argument(help="Who may log in again.")],
    config: ConfigOption = None,
) -> None:
    """Let a deactivated user log in again with their password."""
    user = _change_user(
        username, config, lambda uow, uid, actor: staff.activate_user(uow, uid, actor=actor)
    )
    Console().print(f"user {user.username} may log in again", highlight=False)


def _password(prompt: str, from_stdin: bool, *, confirm: bool = True) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@app.command("unlock")
def unlock_command(
    username: Annotated[str, typer.Argument(help="The user locked out by failed logins.")] = "",
    address: Annotated[
        str, typer.Option(help="Clear a client address's failed logins instead.")
    ] = "",
    config: ConfigOption = None,
) -> None:
    """Clear the failed logins of a user (or of a client address) so they may log in now."""
    if bool(username) == bool(address):
        fail("give a username or --address (one of them)")
    settings = settings_from(config)
    with current_engine(settings) as engine:
        try:
            if address:
                cleared = credentials.unlock_address(
                    UnitOfWork(engine), address, actor=terminal_actor()
                )
                who = f"address {address}"
            else:
                user = credentials.find_user(UnitOfWork(engine), username)
                assert user.id is not None
                _, cleared = credentials.unlock_user(
                    UnitOfWork(engine), user.id, actor=terminal_actor()
                )
                who = f"user {username}"
        except GasbillError as exc:
            fail(str(exc))
    Console().print(f"{who} unlocked ({cleared} failed logins cleared)", highlight=False)


@app.command("password")
def password_command(
    username: Annotated[str, typer.Argument(help="Whose password to set.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Set a user's password (the admin's reset): their tokens stop working, their lock goes."""
    settings = settings_from(config)
    password = _password("New password", password_stdin)
    with current_engine(settings) as engine:
        try:
            user = credentials.find_user(UnitOfWork(engine), username)
            assert user.id is not None
            credentials.reset_password(
                UnitOfWork(engine),
                user.id,
                password=password,
                passwords=Argon2Passwords(),
                actor=terminal_actor(),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console().print(f"password of {username} set; their tokens are revoked", highlight=False)


@app.command("change-password")
def change_password_command(
    username: Annotated[str, typer.Argument(help="Your username.")],
    password_stdin: Annotated[
        bool,
        typer.Option(
            "--password-stdin", help="Read the current, then the new password from stdin."
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Change your own password: the current one proves it is you."""
    settings = settings_from(config)
    current = _password("Current password", password_stdin, confirm=False)
    new = _password("New password", password_stdin)
    limits = staff.LoginLimits(
        settings.staff.login_max_failures,
        timedelta(minutes=settings.staff.login_window_minutes),
        settings.staff.login_max_failures_per_client,
    )
    with current_engine(settings) as engine:
        try:
            user = credentials.find_user(UnitOfWork(engine), username)
            assert user.id is not None
            credentials.change_own_password(
                UnitOfWork(engine),
                user.id,
                current=current,
                new=new,
                passwords=Argon2Passwords(),
                limits=limits,
                now=datetime.now(UTC),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console().print(f"password of {username} changed", highlight=False)
