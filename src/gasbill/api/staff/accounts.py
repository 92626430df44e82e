"""Accounts and their meters: open, find, change thresholds, replace a meter; balance, ledger."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query

from gasbill.adapters.db.tables.accounts import Account
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.deps import CatalogDep, ContextDep, CurrentUser, UowDep
from gasbill.api.errors import not_found
from gasbill.api.policy import API
from gasbill.api.staff.schemas import (
    AccountIn,
    AccountOut,
    AccountUpdate,
    BalanceOut,
    BalancesOut,
    ClosureIn,
    ClosureOut,
    Id,
    MeterOut,
    Offset,
    PathId,
    ReadingOut,
    ReplacementIn,
    ReplacementOut,
    TransferOut,
)
from gasbill.bootstrap import Services
from gasbill.domain.accounts import BillingMode
from gasbill.domain.money import Money, Volume
from gasbill.service import ledger
from gasbill.service.accounts import (
    NewAccount,
    NotFound,
    Replacement,
    update_account,
)
from gasbill.service.closing import close_account
from gasbill.service.lookup import account_readings, find_account
from gasbill.service.opening import open_with_payment, opening_progress
from gasbill.service.ports import BindingRecord
from gasbill.service.replacing import Replaced, replace_account_meter

router = APIRouter(prefix=f"{API}/accounts", tags=["accounts"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def meter_out(uow: UnitOfWork, binding: BindingRecord) -> MeterOut:
    meter = uow.accounts.meter_by_id(binding.meter_id)
    assert meter is not None
    final = binding.final_litres
    return MeterOut(
        company_no=meter.company_no,
        comm_no=meter.comm_no,
        bound_at=binding.bound_at,
        opening_register=Volume.of_litres(binding.opening_litres).fixed(),
        unbound_at=binding.unbound_at,
        final_register=None if final is None else Volume.of_litres(final).fixed(),
        reason=binding.reason,
    )


def account_out(uow: UnitOfWork, account: Account) -> AccountOut:
    """Call inside `with uow:`: the active meter is read too."""
    assert account.id is not None
    binding = uow.accounts.active_binding(account.id)
    return AccountOut.model_validate(
        {
            **account.model_dump(),
            "meter": meter_out(uow, binding) if binding is not None else None,
        }
    )


def _read(uow: UnitOfWork, account_id: int) -> AccountOut:
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            raise not_found(f"no account {account_id}")
        return account_out(uow, account)


@router.post(
    "",
    status_code=201,
    summary="Open an account with its first meter (a meter-mode meter is opened remotely)",
)
def open_(
    body: AccountIn, user: CurrentUser, ctx: ContextDep, uow: UowDep, catalog: CatalogDep
) -> AccountOut:
    zone = ZoneInfo(ctx.settings.app.timezone)
    bound_at = body.bound_at or datetime.combine(body.opened_on, time(), zone)
    opened = open_with_payment(
        uow,
        NewAccount(
            customer_id=body.customer_id,
            number=body.number,
            company_no=body.company_no,
            billing_mode=BillingMode(body.billing_mode),
            tariff_id=body.tariff_id,
            opened_on=body.opened_on,
            meter_comm_no=body.meter_comm_no,
            opening_register=Volume(body.opening_register),
            bound_at=bound_at,
            persons=body.persons,
            warning_fen=body.warning_fen,
            cutoff_fen=body.cutoff_fen,
            reopen_fen=body.reopen_fen,
        ),
        initial_fen=body.initial_fen,
        channel=body.channel,
        idempotency_key=f"open-{body.number}",
        actor=user.username,
        now=ctx.clock(),
        catalog=catalog,
        policy=ctx.commands,
        limits=ctx.settings.money.limits(),
    )
    assert opened.account.id is not None
    return _with_opening(uow, _read(uow, opened.account.id))


def _services(ctx: ContextDep) -> Services:
    assert ctx.services is not None, "the app is built on gasbill.bootstrap"
    return ctx.services


def _with_opening(uow: UnitOfWork, account: AccountOut) -> AccountOut:
    if account.billing_mode != BillingMode.METER:
        return account
    return account.model_copy(update={"opening": opening_progress(uow, account.id)})


@router.get("", summary="Accounts: of one customer, by account number or by meter number")
def find(
    uow: UowDep,
    customer_id: Annotated[Id | None, Query()] = None,
    number: Annotated[str | None, Query(min_length=1, max_length=30)] = None,
    meter: Annotated[str | None, Query(min_length=1, max_length=50)] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[AccountOut]:
    if number is not None or meter is not None:
        try:
            found = find_account(uow, number=number, meter=meter)
        except NotFound:
            return []
        assert found.id is not None
        return [_read(uow, found.id)]
    with uow:
        rows = uow.accounts.find(customer_id=customer_id, offset=offset, limit=limit)
        return [account_out(uow, a) for a in rows]


@router.get("/{account_id}/opening", summary="The meter's opening and baseline read, each stage")
def opening(account_id: PathId, uow: UowDep) -> list[dict[str, Any]]:
    return opening_progress(uow, account_id)


@router.get("/{account_id}/readings", summary="The account's meter readings, newest first")
def readings(
    account_id: PathId,
    uow: UowDep,
    all_types: Annotated[bool, Query(description="Not only the daily frozen readings.")] = False,
    offset: Offset = 0,
    limit: Limit = 100,
) -> list[ReadingOut]:
    lines = account_readings(uow, account_id, frozen_only=not all_types, offset=offset, limit=limit)
    return [ReadingOut.model_validate(line, from_attributes=True) for line in lines]


@router.post(
    "/{account_id}/closure",
    summary="Close the account: final reading, credit paid back, valve closed",
)
def close(
    account_id: PathId,
    body: ClosureIn,
    user: CurrentUser,
    ctx: ContextDep,
    uow: UowDep,
) -> ClosureOut:
    closure = close_account(
        uow,
        account_id,
        final_register=Volume(body.final_register) if body.final_register else None,
        channel=body.channel,
        idempotency_key=f"close-{account_id}",
        actor=user.username,
        now=ctx.clock(),
        catalog=ctx.catalog,
        policy=ctx.commands,
    )
    return ClosureOut(
        account_id=closure.account_id,
        final_register=closure.final_register,
        billed_fen=closure.billed_fen,
        netted_fen=closure.netted_fen,
        netting=closure.netting.id if closure.netting is not None else None,
        refunded_fen=closure.refunded_fen,
        refunds=[t.id for t in closure.refunds],
        owed_fen=closure.owed_fen,
        valve_command_id=closure.valve_command_id,
    )


@router.get("/{account_id}", summary="One account and its meter (and the meter's opening)")
def get(account_id: PathId, uow: UowDep) -> AccountOut:
    return _with_opening(uow, _read(uow, account_id))


@router.patch(
    "/{account_id}", summary="Change an active account's thresholds, household size or tariff"
)
def update(
    account_id: PathId,
    body: AccountUpdate,
    user: CurrentUser,
    uow: UowDep,
    catalog: CatalogDep,
) -> AccountOut:
    """Not the status: an account is closed by `POST /api/v1/accounts/{account_id}/closure`
    (final reading, credit paid back, valve closed) and is not reopened; a body naming
    `status` is refused (422), and a closed account refuses every change (409)."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    update_account(uow, account_id, changes, catalog=catalog, actor=user.username)
    return _read(uow, account_id)


@router.post(
    "/{account_id}/meter-replacements",
    status_code=201,
    summary="Replace the meter: the old one's final reading, the new one's opening reading "
    "(meter mode: the old meter's credit settled, the new meter opened with it)",
)
def replace(
    account_id: PathId, body: ReplacementIn, user: CurrentUser, ctx: ContextDep, uow: UowDep
) -> ReplacementOut:
    done = replace_account_meter(
        uow,
        Replacement(
            account_id=account_id,
            at=body.at,
            old_final_register=Volume(body.old_final_register),
            new_comm_no=body.new_comm_no,
            new_opening_register=Volume(body.new_opening_register),
            reason=body.reason,
        ),
        idempotency_key=f"replace-{account_id}-{body.new_comm_no}-{int(body.at.timestamp())}",
        actor=user.username,
        now=ctx.clock(),
        catalog=ctx.catalog,
        policy=ctx.commands,
    )
    with uow:
        return replacement_out(uow, done)


def replacement_out(uow: UnitOfWork, done: Replaced) -> ReplacementOut:
    """Call inside `with uow:`: the new meter, and how the old one was settled."""

    def yuan(fen: int | None) -> str | None:
        return None if fen is None else Money.of_fen(fen).fixed()

    final = done.old.final_litres
    return ReplacementOut(
        **meter_out(uow, done.new).model_dump(),
        billing_mode=done.billing_mode,
        old_final_register=None if final is None else Volume.of_litres(final).fixed(),
        ledger_credit=yuan(done.ledger_credit_fen),
        meter_remain=yuan(done.meter_remain_fen),
        difference=yuan(done.difference_fen),
        opening_command_id=done.opening_command_id,
    )


@router.get("/{account_id}/balance", summary="The account's balances in the ledger")
def balance(account_id: PathId, uow: UowDep) -> BalancesOut:
    balances = ledger.account_balances(uow, account_id)
    return BalancesOut(
        account_id=account_id,
        balances={
            name: BalanceOut(
                posted_fen=b.posted,
                pending_fen=b.pending,
                available_fen=b.available,
                available=Money.of_fen(b.available).fixed(),
            )
            for name, b in balances.items()
        },
    )


@router.get("/{account_id}/ledger", summary="The account's ledger lines (transfers)")
def lines(
    account_id: PathId, uow: UowDep, offset: Offset = 0, limit: Limit = 100
) -> list[TransferOut]:
    transfers = ledger.account_transfers(uow, account_id, offset=offset, limit=limit)
    return [TransferOut.of(t) for t in transfers]
