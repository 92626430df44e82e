"""`gasbill account …`: a clerk's common tasks from a terminal, through the same services."""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.config import Settings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Volume, fen_from_yuan_text
from gasbill.service import ledger
from gasbill.service.accounts import NewAccount, NotFound, create_customer
from gasbill.service.lookup import find_account
from gasbill.service.opening import Opened, open_with_payment, opening_progress
from gasbill.service.payments import top_up_progress
from gasbill.service.ports import AccountRecord

app = typer.Typer(
    help="Accounts: open, show, list, pay, refund, adjust, readings, close.",
    no_args_is_help=True,
)

AccountArg = Annotated[str, typer.Argument(help="Account id, or its number.")]


class ModeChoice(enum.StrEnum):
    system = "system"
    meter = "meter"


def fen_of(text: str, what: str) -> int:
    try:
        return fen_from_yuan_text(text)
    except GasbillError:
        fail(f"{what} must be yuan with at most 2 decimals, e.g. 100.00, not {text!r}")


@app.command("open")
def open_command(
    number: Annotated[str, typer.Argument(help="The new account's number.")],
    meter: Annotated[str, typer.Option(help="The meter's communication number (10 or 14 digits).")],
    company: Annotated[str, typer.Option(help="The meter company's number (4 digits).")],
    tariff: Annotated[str, typer.Option(help="Tariff id.")],
    customer_id: Annotated[int | None, typer.Option(help="An existing customer.")] = None,
    customer: Annotated[str | None, typer.Option(help="Name of a new customer.")] = None,
    phone: Annotated[str, typer.Option(help="The new customer's phone.")] = "",
    address: Annotated[str, typer.Option(help="The new customer's address.")] = "",
    mode: Annotated[ModeChoice, typer.Option(help="Who holds the balance.")] = ModeChoice.system,
    opened: Annotated[
        datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Opening date (today).")
    ] = None,
    register: Annotated[str, typer.Option(help="The meter's opening register, m³.")] = "0",
    persons: Annotated[int, typer.Option(min=1, max=99, help="Persons in the household.")] = 1,
    warning: Annotated[str, typer.Option(help="Low-balance warning, yuan.")] = "20.00",
    pay: Annotated[
        str, typer.Option(help="The first payment, yuan (meter mode: it goes to the meter).")
    ] = "0",
    channel: Annotated[str, typer.Option(help="The first payment's channel.")] = "counter",
    config: ConfigOption = None,
) -> None:
    """Open an account with its meter, for an existing customer or a new one; a meter-mode
    meter is opened remotely (`openaccount` with the tariff's ladder and the first payment)."""
    if (customer_id is None) == (customer is None):
        fail("give either --customer-id (existing) or --customer NAME (new)")
    settings = settings_from(config)
    new_account = _account_maker(
        ZoneInfo(settings.app.timezone),
        opened,
        number=number,
        company=company,
        mode=mode,
        tariff=tariff,
        meter=meter,
        register=register,
        persons=persons,
        warning=warning,
    )
    actor = terminal_actor()
    new_customer = (customer, phone, address) if customer is not None else None
    result, customer_id = _open_account(
        settings,
        new_account,
        customer_id=customer_id,
        new_customer=new_customer,
        initial_fen=fen_of(pay, "--pay"),
        channel=channel,
        actor=actor,
    )
    account = result.account
    sent = f"; openaccount queued as command {result.command_id}" if result.command_id else ""
    Console().print(
        f"account {account.number} opened (id {account.id}) for customer {customer_id}, "
        f"meter {meter}{sent}",
        highlight=False,
        soft_wrap=True,
    )


def _account_maker(
    zone: ZoneInfo,
    opened: datetime | None,
    *,
    number: str,
    company: str,
    mode: ModeChoice,
    tariff: str,
    meter: str,
    register: str,
    persons: int,
    warning: str,
) -> Callable[[int], NewAccount]:
    """The new account for a customer's id, from the options (read when it is made, so a
    bad register or warning fails in the transaction, as the opening does)."""
    opened_on: date = opened.date() if opened else datetime.now(zone).date()

    def new_account(owner: int) -> NewAccount:
        return NewAccount(
            customer_id=owner,
            number=number,
            company_no=company,
            billing_mode=BillingMode(str(mode)),
            tariff_id=tariff,
            opened_on=opened_on,
            meter_comm_no=meter,
            opening_register=Volume(register),
            bound_at=datetime.combine(opened_on, time(), zone),
            persons=persons,
            warning_fen=fen_of(warning, "--warning"),
        )

    return new_account


def _open_account(
    settings: Settings,
    new_account: Callable[[int], NewAccount],
    *,
    customer_id: int | None,
    new_customer: tuple[str, str, str] | None,
    initial_fen: int,
    channel: str,
    actor: str,
) -> tuple[Opened, int]:
    """Create the customer (`new_customer`: name, phone, address) unless `customer_id` names
    one, then open the account for them with its first payment; and the customer's id."""
    with current_services(settings) as services:
        uow = services.uow()
        try:
            if new_customer is not None:
                name, phone, address = new_customer
                made = create_customer(uow, name=name, phone=phone, address=address, actor=actor)
                assert made.id is not None
                customer_id = made.id
            assert customer_id is not None
            new = new_account(customer_id)
            opened = open_with_payment(
                uow,
                new,
                initial_fen=initial_fen,
                channel=channel,
                idempotency_key=f"open-{new.number}",
                actor=actor,
                now=services.now(),
                catalog=services.catalog,
                policy=services.command_policy,
                limits=settings.money.limits(),
            )
        except GasbillError as exc:
            fail(str(exc))
    return opened, customer_id


@app.command("show")
def show_command(
    account: Annotated[str | None, typer.Argument(help="Account id, or its number.")] = None,
    meter: Annotated[str | None, typer.Option(help="Find it by its meter's number.")] = None,
    config: ConfigOption = None,
) -> None:
    """An account (by id, number or meter number), its meter, balances, opening and top-ups."""
    if (account is None) == (meter is None):
        fail("give the account (id or number) or --meter NUMBER")
    settings = settings_from(config)
    with current_services(settings) as services:
        uow = services.uow()
        found = find(uow, account, meter)
        assert found.id is not None
        with uow:
            binding = uow.accounts.active_binding(found.id)
            meter_row = uow.accounts.meter_by_id(binding.meter_id) if binding else None
            commands = list(CommandStore(uow.session).of_account(found.id, 20))
            top_ups = [
                top_up_progress(c) for c in commands if c.ctrl_type == CtrlType.REMOTE_CHARGE
            ]
        balances = ledger.account_balances(uow, found.id)
        opening = opening_progress(uow, found.id) if found.billing_mode == BillingMode.METER else []
    console = Console(highlight=False)
    console.print(
        f"[bold]{found.number}[/] (id {found.id}), customer {found.customer_id}, "
        f"{found.billing_mode} mode, tariff {found.tariff_id}, {found.persons} person(s), "
        f"{found.status}, opened {found.opened_on}"
    )
    if binding is not None and meter_row is not None:
        console.print(
            f"meter {meter_row.comm_no} (company {meter_row.company_no}) since "
            f"{binding.bound_at.isoformat(timespec='minutes')}, opening register "
            f"{Volume.of_litres(binding.opening_litres).fixed()} m³"
        )
    table = Table(title="balances (yuan)")
    for column in ("ledger account", "posted", "pending", "available"):
        table.add_column(column, justify="right")
    for name, balance in balances.items():
        table.add_row(
            name,
            Money.of_fen(balance.posted).fixed(),
            Money.of_fen(balance.pending).fixed(),
            Money.of_fen(balance.available).fixed(),
        )
    console.print(table)
    if opening or top_ups:
        console.print(progress_table("opening and top-ups (newest last)", opening + top_ups[::-1]))


def progress_table(title: str, views: list[dict[str, Any]]) -> Table:
    """Commands as a clerk sees them: stage, reason, next attempt."""
    table = Table(title=title)
    for column in ("command", "kind", "amount", "stage", "reason", "next attempt"):
        table.add_column(column)
    for view in views:
        amount = view.get("amount_fen")
        table.add_row(
            str(view["id"]),
            view["kind"],
            Money.of_fen(amount).fixed() if amount else "",
            view["stage"],
            view["reason"] or "",
            view["next_attempt_at"] or "",
        )
    return table


def find(uow: UnitOfWork, wanted: str | None, meter: str | None = None) -> AccountRecord:
    """By meter number, account number, or id; a clear failure otherwise."""
    try:
        if meter is not None:
            return find_account(uow, meter=meter)
        assert wanted is not None
        try:
            return find_account(uow, number=wanted)
        except NotFound:
            if not wanted.isdigit():
                raise
            with uow:
                found = uow.accounts.get(int(wanted))
            if found is None:
                raise
            return found
    except NotFound:
        what = f"meter {meter!r}" if meter else repr(wanted)
        fail(f"no account for {what} (give its id, its number or --meter)")


@app.command("list")
def list_command(
    customer_id: Annotated[int | None, typer.Option(help="Only this customer's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Accounts, oldest first."""
    settings = settings_from(config)
    with current_services(settings) as services:
        uow = services.uow()
        with uow:
            accounts = uow.accounts.find(customer_id=customer_id, limit=limit)
    table = Table(title="Accounts")
    for column in ("id", "number", "customer", "mode", "tariff", "status"):
        table.add_column(column)
    for row in accounts:
        table.add_row(
            str(row.id),
            row.number,
            str(row.customer_id),
            row.billing_mode,
            row.tariff_id,
            row.status,
        )
    Console().print(table)
