"""`gasbill account replace-meter`: the same use case as the staff API's meter replacement."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from gasbill.cli.accounts import AccountArg, app, find
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Volume
from gasbill.service.accounts import Replacement
from gasbill.service.replacing import Replaced, replace_account_meter


@app.command("replace-meter")
def replace_meter_command(
    account: AccountArg,
    new_meter: Annotated[
        str, typer.Option("--new-meter", help="The new meter's communication number.")
    ],
    final: Annotated[str, typer.Option(help="The old meter's final register, m³.")],
    opening: Annotated[str, typer.Option(help="The new meter's opening register, m³.")] = "0",
    at: Annotated[
        datetime | None,
        typer.Option(
            formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
            help="When the meters were swapped, local time (now).",
        ),
    ] = None,
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "meter replaced",
    config: ConfigOption = None,
) -> None:
    """Replace the account's meter: the old one's final register, the new one's opening register.
    Meter mode: the old meter's credit is settled and the new meter is opened with it."""
    settings = settings_from(config)
    zone = ZoneInfo(settings.app.timezone)
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        now = services.now()
        when = at.replace(tzinfo=zone) if at is not None else now
        try:
            done = replace_account_meter(
                services.uow(),
                Replacement(
                    account_id=found.id,
                    at=when,
                    old_final_register=Volume(final),
                    new_comm_no=new_meter,
                    new_opening_register=Volume(opening),
                    reason=reason,
                ),
                idempotency_key=f"replace-{found.id}-{new_meter}-{int(when.timestamp())}",
                actor=terminal_actor(),
                now=now,
                catalog=services.catalog,
                policy=services.command_policy,
            )
        except GasbillError as exc:
            fail(str(exc))
    Console(highlight=False, soft_wrap=True).print(_said(found.number, new_meter, final, done))


def _said(number: str, new_meter: str, final: str, done: Replaced) -> str:
    line = f"account {number}: old meter closed at {final} m³, meter {new_meter} bound"
    if done.opening_command_id is None:
        return line
    credit = Money.of_fen(done.ledger_credit_fen or 0).fixed()
    remain = (
        "no reported balance"
        if done.meter_remain_fen is None
        else f"its last reported balance {Money.of_fen(done.meter_remain_fen).fixed()}"
    )
    return (
        f"{line}; the old meter's credit {credit} yuan (ledger; {remain}) back to prepaid "
        f"and onto the new meter: openaccount queued as command {done.opening_command_id} "
        f"(`gasbill account show {number}` shows its progress)"
    )
