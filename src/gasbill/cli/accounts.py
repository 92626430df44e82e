"""`gasbill account …`: a clerk's common tasks from a terminal, through the same services."""

from __future__ import annotations

import enum
from datetime import date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_engine, terminal_actor
from gasbill.domain.accounts import BillingMode
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money, Volume, fen_from_yuan_text
from gasbill.service import ledger
from gasbill.service.accounts import NewAccount, create_customer, open_account

app = typer.Typer(help="Accounts: open, show, list, pay.", no_args_is_help=True)

AccountArg = Annotated[str, typer.Argument(help="Account id, or its number.")]


class ModeChoice(enum.StrEnum):
    system = "system"
    meter = "meter"


def _fen(text: str, what: str) -> int:
    try:
        return fen_from_yuan_text(text)
    except GasbillError:
        fail(f"{what} must be yuan with at most 2 decimals, e.g. 100.00, not {text!r}")


def _find(uow: UnitOfWork, wanted: str) -> Account:
    with uow:
        account = uow.accounts.by_number(wanted)
        if account is None and wanted.isdigit():
            account = uow.accounts.get(int(wanted))
    if account is None:
        fail(f"no account {wanted!r} (give its id or its number)")
    return account


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
    config: ConfigOption = None,
) -> None:
    """Open an account with its meter, for an existing customer or a new one."""
    if (customer_id is None) == (customer is None):
        fail("give either --customer-id (existing) or --customer NAME (new)")
    settings = settings_from(config)
    zone = ZoneInfo(settings.app.timezone)
    opened_on: date = opened.date() if opened else datetime.now(zone).date()
    actor = terminal_actor()
    catalog = TariffCatalog(settings.tariffs.dir, settings.app.timezone)
    with current_engine(settings) as engine:
        uow = UnitOfWork(engine)
        try:
            if customer is not None:
                made = create_customer(
                    uow, name=customer, phone=phone, address=address, actor=actor
                )
                assert made.id is not None
                customer_id = made.id
            assert customer_id is not None
            account = open_account(
                uow,
                NewAccount(
                    customer_id=customer_id,
                    number=number,
                    company_no=company,
                    billing_mode=BillingMode(str(mode)),
                    tariff_id=tariff,
                    opened_on=opened_on,
                    meter_comm_no=meter,
                    opening_register=Volume(register),
                    bound_at=datetime.combine(opened_on, time(), zone),
                    persons=persons,
                    warning_fen=_fen(warning, "--warning"),
                ),
                catalog=catalog,
                actor=actor,
            )
        except GasbillError as exc:
            fail(str(exc))
    Console().print(
        f"account {account.number} opened (id {account.id}) for customer {customer_id}, "
        f"meter {meter}",
        highlight=False,
    )


@app.command("show")
def show_command(account: AccountArg, config: ConfigOption = None) -> None:
    """An account, its meter and its balances."""
    settings = settings_from(config)
    with current_engine(settings) as engine:
        uow = UnitOfWork(engine)
        found = _find(uow, account)
        assert found.id is not None
        with uow:
            binding = uow.accounts.active_binding(found.id)
            meter = uow.accounts.meter_by_id(binding.meter_id) if binding else None
        balances = ledger.account_balances(uow, found.id)
    console = Console(highlight=False)
    console.print(
        f"[bold]{found.number}[/] (id {found.id}), customer {found.customer_id}, "
        f"{found.billing_mode} mode, tariff {found.tariff_id}, {found.persons} person(s), "
        f"{found.status}, opened {found.opened_on}"
    )
    if binding is not None and meter is not None:
        console.print(
            f"meter {meter.comm_no} (company {meter.company_no}) since "
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


@app.command("list")
def list_command(
    customer_id: Annotated[int | None, typer.Option(help="Only this customer's.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 100,
    config: ConfigOption = None,
) -> None:
    """Accounts, oldest first."""
    settings = settings_from(config)
    with current_engine(settings) as engine:
        uow = UnitOfWork(engine)
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


@app.command("pay")
def pay_command(
    account: AccountArg,
    amount: Annotated[str, typer.Option(help="Yuan, e.g. 100.00.")],
    key: Annotated[
        str, typer.Option(help="Idempotency key: the same key never pays twice (e.g. receipt no).")
    ],
    channel: Annotated[str, typer.Option(help="Payment channel.")] = "cash",
    memo: Annotated[str, typer.Option(help="A note kept with the payment.")] = "",
    config: ConfigOption = None,
) -> None:
    """Record a payment into the account's prepaid balance."""
    settings = settings_from(config)
    fen = _fen(amount, "--amount")
    with current_engine(settings) as engine:
        uow = UnitOfWork(engine)
        found = _find(uow, account)
        assert found.id is not None
        try:
            transfer = ledger.record_payment(
                uow,
                account_id=found.id,
                amount_fen=fen,
                channel=channel,
                idempotency_key=key,
                actor=terminal_actor(),
                memo=memo,
                limits=settings.money.limits(),
            )
        except GasbillError as exc:
            fail(str(exc))
        balances = ledger.account_balances(uow, found.id)
    prepaid = balances.get("prepaid")
    after = f"; prepaid now {Money.of_fen(prepaid.available).fixed()}" if prepaid else ""
    Console().print(
        f"payment {transfer.id}: {Money.of_fen(transfer.amount).fixed()} yuan by {channel} "
        f"into {found.number}{after}",
        highlight=False,
    )
