"""`gasbill account update|reverse`: the same use cases as the staff API's
`PATCH /api/v1/accounts/{id}` and `POST /api/v1/transfers/{id}/reversal`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from gasbill.cli.account_money import KeyOption
from gasbill.cli.accounts import AccountArg, app, fen_of, find
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money
from gasbill.service import ledger
from gasbill.service.accounts import update_account

YuanOption = Annotated[str | None, typer.Option(help="Yuan, e.g. 20.00.")]


def _changes(
    persons: int | None,
    warning: str | None,
    cutoff: str | None,
    reopen: str | None,
    tariff: str | None,
) -> dict[str, Any]:
    """The fields given, as the API's body names them (fen for money)."""
    changes: dict[str, Any] = {}
    if persons is not None:
        changes["persons"] = persons
    if warning is not None:
        changes["warning_fen"] = fen_of(warning, "--warning")
    if cutoff is not None:
        text = cutoff.strip()
        fen = fen_of(text.lstrip("-"), "--cutoff")
        changes["cutoff_fen"] = -fen if text.startswith("-") else fen
    if reopen is not None:
        changes["reopen_fen"] = fen_of(reopen, "--reopen")
    if tariff is not None:
        changes["tariff_id"] = tariff
    if not changes:
        fail("nothing to change: give at least one of the options (see --help)")
    return changes


@app.command("update")
def update_command(
    account: AccountArg,
    persons: Annotated[
        int | None, typer.Option(min=1, max=99, help="Persons in the household.")
    ] = None,
    warning: YuanOption = None,
    cutoff: Annotated[
        str | None, typer.Option(help="Valve cut-off, yuan ≤ 0 (system mode), e.g. -10.00.")
    ] = None,
    reopen: Annotated[
        str | None, typer.Option(help="Balance that reopens a cut-off valve, yuan.")
    ] = None,
    tariff: Annotated[str | None, typer.Option(help="Another tariff's id.")] = None,
    status: Annotated[
        str | None, typer.Option(hidden=True, help="Refused: closing is `account close`.")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Change an active account's thresholds, household size or tariff (audited).

    Not its status: `gasbill account close` closes an account (final reading, credit
    paid back, valve closed), and a closed account is neither reopened nor changed.
    """
    if status is not None:
        fail(
            "--status is not changed by an update: close the account with "
            f"`gasbill account close {escape(account)}` (final reading, credit paid back, valve "
            "closed); a closed account is not reopened"
        )
    changes = _changes(persons, warning, cutoff, reopen, tariff)
    settings = settings_from(config)
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        try:
            updated = update_account(
                services.uow(),
                found.id,
                changes,
                catalog=services.catalog,
                actor=terminal_actor(),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console(highlight=False, soft_wrap=True).print(
        f"account {updated.number}: tariff {updated.tariff_id}, {updated.persons} persons, "
        f"warning {Money.of_fen(updated.warning_fen).fixed()}, "
        f"cut-off {Money.of_fen(updated.cutoff_fen).fixed()}, "
        f"reopen {Money.of_fen(updated.reopen_fen).fixed()}, {updated.status}"
    )


@app.command("reverse")
def reverse_command(
    transfer: Annotated[str, typer.Argument(help="The transfer's id (from `account show`).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger and the audit log).")],
    key: KeyOption,
    config: ConfigOption = None,
) -> None:
    """Reverse a posted transfer (an auditor's task) with a reason."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            reversal = ledger.reverse_transfer(
                services.uow(),
                transfer_id=transfer,
                reason=reason,
                actor=terminal_actor(),
                idempotency_key=key,
            )
        except GasbillError as exc:
            fail(str(exc))
    Console(highlight=False, soft_wrap=True).print(
        f"reversal {reversal.id} of transfer {transfer}: "
        f"{Money.of_fen(reversal.amount).fixed()} yuan back"
    )
