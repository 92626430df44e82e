"""A payment's receipt and an account's statement (对账单), read from the books.

Balances here are the money the customer has with us: prepaid plus meter
credit, moved only by posted ledger lines (holds between the two move nothing).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.adapters.db.tables.accounts import Account, Customer
from gasbill.adapters.db.tables.billing import ChargeDay
from gasbill.adapters.db.tables.ledger import LedgerAccount, TransferRow
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.domain.money import Price
from gasbill.service.decisions.balance import meter_of
from gasbill.web.views import local_day, readings_of, transfer_rows

CUSTOMER_KINDS = ("prepaid", "meter_credit")
MOVES = ("posted", "post_pending")


def receipt(uow: UnitOfWork, transfer_id: str) -> dict[str, Any] | None:
    """A payment as its receipt shows it; None if there is no such payment."""
    with uow:
        found = transfer_rows_by_id(uow, transfer_id)
        if found is None or found["kind"] != "payment" or not found["account_id"]:
            return None
        account = uow.accounts.get(found["account_id"])
        assert account is not None
        command = None
        key = uow.session.exec(
            select(TransferRow.idempotency_key).where(TransferRow.id == transfer_id)
        ).first()
        if key and key.startswith("payment:"):
            hold = uow.ledger.transfer_by_key(f"top-up-hold:{key.removeprefix('payment:')}")
            if hold is not None:
                command = CommandStore(uow.session).by_hold(hold.id)
        return {
            **found,
            "number": f"{found['at']:%Y%m%d}-{found['seq']:08d}",
            "account": account,
            "customer": uow.accounts.customer(account.customer_id),
            "meter": meter_of(uow, account.id or 0),
            "top_up_id": command.id if command is not None else None,
        }


def transfer_rows_by_id(uow: UnitOfWork, transfer_id: str) -> dict[str, Any] | None:
    seq = uow.session.exec(select(TransferRow.seq).where(TransferRow.id == transfer_id)).first()
    if seq is None:
        return None
    rows = transfer_rows(uow, limit=1, seq=seq)
    return rows[0] if rows else None


@dataclass
class Statement:
    account: Account
    customer: Customer | None
    start: date
    end: date
    opening_fen: int
    closing_fen: int
    readings: list[dict[str, Any]]
    tiers: list[dict[str, Any]]
    lines: list[dict[str, Any]]
    charged_fen: int
    paid_fen: int
    refunded_fen: int


def statement(
    uow: UnitOfWork, account_id: int, start: date, end: date, zone: str
) -> Statement | None:
    """对账单: readings, m³ per tier, charges, payments and the balance over [start, end]."""
    since, _ = local_day(start, zone)
    _, until = local_day(end, zone)
    with uow:
        account = uow.accounts.get(account_id)
        if account is None:
            return None
        own = _customer_ledger_ids(uow, account_id)
        opening = _money_before(uow, own, since)
        lines = transfer_rows(uow, account_id=account_id, since=since, until=until, limit=5000)
        lines.reverse()
        change = 0
        for line in lines:
            line["effect"] = _effect(line, account_id)
            change += line["effect"]
        tiers = _tiers(uow, account_id, start, end)
        binding = uow.accounts.active_binding(account_id)
        readings = readings_of(uow, meter_of(uow, account_id), binding, days=400)
        readings = [r for r in readings if since <= r["at"] < until]
        return Statement(
            account=account,
            customer=uow.accounts.customer(account.customer_id),
            start=start,
            end=end,
            opening_fen=opening,
            closing_fen=opening + change,
            readings=readings,
            tiers=tiers,
            lines=lines,
            charged_fen=sum(r["amount_fen"] for r in lines if r["kind"] in ("charge", "true_up")),
            paid_fen=sum(r["amount_fen"] for r in lines if r["kind"] == "payment"),
            refunded_fen=sum(r["amount_fen"] for r in lines if r["kind"] == "refund"),
        )


def _customer_ledger_ids(uow: UnitOfWork, account_id: int) -> set[int]:
    """The account's own ledger accounts (the money the customer has with us)."""
    return {
        i
        for i in uow.session.exec(
            select(LedgerAccount.id).where(
                LedgerAccount.account_id == account_id,
                col(LedgerAccount.kind).in_(CUSTOMER_KINDS),
            )
        ).all()
        if i is not None
    }


def _tiers(uow: UnitOfWork, account_id: int, start: date, end: date) -> list[dict[str, Any]]:
    """m³ and cost per tier (and price) over the charge days from `start` to `end`."""
    days = uow.session.exec(
        select(ChargeDay).where(
            ChargeDay.account_id == account_id,
            col(ChargeDay.day) >= start,
            col(ChargeDay.day) <= end,
        )
    ).all()
    per_tier: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0])
    for day in days:
        for _version, tier, price_milli, litres, cost_micro in json.loads(day.lines):
            slot = per_tier[(int(tier), int(price_milli))]
            slot[0] += int(litres)
            slot[1] += int(cost_micro)
    return [
        {"tier": t, "price": Price.of_milli(p), "litres": s[0], "cost_micro": s[1]}
        for (t, p), s in sorted(per_tier.items())
    ]


def _effect(line: dict[str, Any], account_id: int) -> int:
    """What a ledger line did to the money the customer has with us (prepaid + meter credit)."""
    if line["status"] not in MOVES:
        return 0
    into = line["credit"].partition(":")[0] in CUSTOMER_KINDS
    out_of = line["debit"].partition(":")[0] in CUSTOMER_KINDS
    if into and not out_of:
        return int(line["amount_fen"])
    if out_of and not into:
        return -int(line["amount_fen"])
    return 0


def _money_before(uow: UnitOfWork, own: set[int], before: datetime) -> int:
    if not own:
        return 0
    moved = sa.and_(col(TransferRow.status).in_(MOVES), col(TransferRow.effective_at) < before)
    credit = sa.func.coalesce(
        sa.func.sum(
            sa.case(
                (
                    sa.and_(
                        col(TransferRow.credit_account_id).in_(own),
                        col(TransferRow.debit_account_id).not_in(own),
                    ),
                    col(TransferRow.amount_fen),
                ),
                (
                    sa.and_(
                        col(TransferRow.debit_account_id).in_(own),
                        col(TransferRow.credit_account_id).not_in(own),
                    ),
                    -col(TransferRow.amount_fen),
                ),
                else_=0,
            )
        ),
        0,
    )
    return int(uow.session.execute(sa.select(credit).where(moved)).scalar_one())
