"""`gasbill account pay|refund|adjust|close|readings`: the same use cases as the staff API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.bootstrap import Services
from gasbill.cli.accounts import AccountArg, app, fen_of, find, progress_table
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Volume
from gasbill.service import ledger
from gasbill.service.closing import close_account
from gasbill.service.lookup import account_readings
from gasbill.service.payments import take_payment, top_up_progress

KeyOption = Annotated[
    str, typer.Option(help="Idempotency key: the same key never acts twice (e.g. receipt no).")
]


def _prepaid_after(services: Services, account_id: int) -> str:
    prepaid = ledger.account_balances(services.uow(), account_id).get("prepaid")
    return f"; prepaid now {Money.of_fen(prepaid.available).fixed()}" if prepaid else ""


@app.command("pay")
def pay_command(
    account: AccountArg,
    amount: Annotated[str, typer.Option(help="Yuan, e.g. 100.00.")],
    key: KeyOption,
    channel: Annotated[str, typer.Option(help="Payment channel.")] = "cash",
    memo: Annotated[str, typer.Option(help="A note kept with the payment.")] = "",
    config: ConfigOption = None,
) -> None:
    """Take a payment; on a meter-mode account it goes to the meter as a remote top-up."""
    settings = settings_from(config)
    fen = fen_of(amount, "--amount")
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        try:
            outcome = take_payment(
                services.uow(),
                account_id=found.id,
                amount_fen=fen,
                channel=channel,
                idempotency_key=key,
                actor=terminal_actor(),
                now=services.now(),
                policy=services.command_policy,
                memo=memo,
                decide=services.decide,
                limits=settings.money.limits(),
            )
        except GasbillError as exc:
            fail(str(exc))
        after = _prepaid_after(services, found.id)
        if outcome.owed_fen is not None:  # a closed account, paying what it owed
            owes = Money.of_fen(outcome.owed_fen).fixed()
            after += f"; closed, it owes {owes} now" if outcome.owed_fen else "; closed, settled"
        progress = None
        if outcome.top_up_id is not None:
            with services.uow() as uow:
                command = CommandStore(uow.session).get(outcome.top_up_id)
                progress = top_up_progress(command) if command is not None else None
    payment = outcome.payment
    again = "" if outcome.new else " (already taken with this key: nothing done again)"
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"payment {payment.id}: {Money.of_fen(payment.amount).fixed()} yuan by {channel} "
        f"into {found.number}{after}{again}"
    )
    if progress is not None:
        console.print(progress_table("top-up to the meter", [progress]))


@app.command("refund")
def refund_command(
    account: AccountArg,
    amount: Annotated[str, typer.Option(help="Yuan, e.g. 30.00.")],
    reason: Annotated[str, typer.Option(help="Why the money goes back.")],
    key: KeyOption,
    channel: Annotated[str, typer.Option(help="How it is paid back.")] = "cash",
    config: ConfigOption = None,
) -> None:
    """Pay money back out of the account's available prepaid balance."""
    settings = settings_from(config)
    fen = fen_of(amount, "--amount")
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        try:
            transfer = ledger.refund(
                services.uow(),
                account_id=found.id,
                amount_fen=fen,
                channel=channel,
                reason=reason,
                actor=terminal_actor(),
                idempotency_key=key,
                limits=settings.money.limits(),
            )
        except GasbillError as exc:
            fail(str(exc))
        after = _prepaid_after(services, found.id)
    Console(highlight=False, soft_wrap=True).print(
        f"refund {transfer.id}: {Money.of_fen(transfer.amount).fixed()} yuan by {channel} "
        f"from {found.number}{after}"
    )


@app.command("adjust")
def adjust_command(
    account: AccountArg,
    amount: Annotated[str, typer.Option(help="Signed yuan: + credits the customer, - debits.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the ledger and the audit log).")],
    key: KeyOption,
    target: Annotated[str, typer.Option(help="prepaid or meter_credit.")] = "prepaid",
    config: ConfigOption = None,
) -> None:
    """Correct a balance (an auditor's task): a signed amount, its target and a reason."""
    settings = settings_from(config)
    negative = amount.strip().startswith("-")
    fen = fen_of(amount.strip().lstrip("+-"), "--amount")
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        try:
            transfer = ledger.post_adjustment(
                services.uow(),
                account_id=found.id,
                amount_fen=-fen if negative else fen,
                target=target,
                reason=reason,
                actor=terminal_actor(),
                idempotency_key=key,
                limits=settings.money.limits(),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console(highlight=False, soft_wrap=True).print(
        f"adjustment {transfer.id}: {'-' if negative else '+'}"
        f"{Money.of_fen(transfer.amount).fixed()} yuan on {target} of {found.number}"
    )


@app.command("close")
def close_command(
    account: AccountArg,
    final: Annotated[
        str | None, typer.Option(help="Final register read off the meter, m³ (default: latest).")
    ] = None,
    channel: Annotated[str, typer.Option(help="How the remaining credit is paid back.")] = "cash",
    config: ConfigOption = None,
) -> None:
    """Close the account: final reading, the credit paid back, the valve closed."""
    settings = settings_from(config)
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        try:
            closure = close_account(
                services.uow(),
                found.id,
                final_register=Volume(final) if final else None,
                channel=channel,
                idempotency_key=f"close-{found.id}",
                actor=terminal_actor(),
                now=services.now(),
                catalog=services.catalog,
                policy=services.command_policy,
            )
        except GasbillError as exc:
            fail(str(exc))
    valve = f"; valve close queued as command {closure.valve_command_id}"
    netted = ""
    if closure.netting is not None:
        netted = (
            f"{Money.of_fen(closure.netted_fen).fixed()} yuan moved from "
            f"{closure.netting.debit_account.kind} to {closure.netting.credit_account.kind} "
            f"to settle it (transfer {closure.netting.id}); "
        )
    owed = f"; {Money.of_fen(closure.owed_fen).fixed()} yuan still owed" if closure.owed_fen else ""
    Console(highlight=False, soft_wrap=True).print(
        f"account {found.number} closed at {closure.final_register or 'no'} m³; "
        f"{Money.of_fen(closure.billed_fen).fixed()} yuan billed up to it; "
        + netted
        + f"{Money.of_fen(closure.refunded_fen).fixed()} yuan paid back by {channel}"
        + owed
        + (valve if closure.valve_command_id else "")
    )


@app.command("readings")
def readings_command(
    account: AccountArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 30,
    config: ConfigOption = None,
) -> None:
    """The account's daily frozen readings, newest first."""
    settings = settings_from(config)
    with current_services(settings) as services:
        found = find(services.uow(), account)
        assert found.id is not None
        lines = account_readings(services.uow(), found.id, limit=limit)
    table = Table(title=f"readings of {found.number}")
    for column in ("meter", "at", "std_sum m³", "remain", "price", "state"):
        table.add_column(column)
    for line in lines:
        table.add_row(
            line.meter_comm_no,
            line.acquisition_time.isoformat(timespec="minutes"),
            line.std_sum or "",
            line.remain_money or "",
            line.curr_price or "",
            "" if line.meter_state is None else str(line.meter_state),
        )
    Console().print(table)
