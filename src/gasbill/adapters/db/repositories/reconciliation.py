"""Reconciliation's reads: a page of meter-mode accounts at a time, one grouped query per kind.

Every query takes the page's account (or meter) ids and answers for all of
them at once; the ledger as of each account's own instant is a correlated
sum over the (account, effective_at) indexes of `transfer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session

from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.commands import Command
from gasbill.adapters.db.tables.ledger import LedgerAccount, TransferRow
from gasbill.adapters.db.tables.readings import BillingInbox, MeterReading
from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType
from gasbill.domain.ledger import AccountKind
from gasbill.domain.outbox import CommandStatus

FROZEN = 1
POSTED = ("posted", "post_pending")


def _t(model: Any) -> sa.Table:
    return cast(sa.Table, model.__table__)


account_t, meter_t, binding_t = _t(Account), _t(Meter), _t(MeterBinding)
command_t = _t(Command)
ledger_t, transfer_t = _t(LedgerAccount), _t(TransferRow)
reading_t, inbox_t = _t(MeterReading), _t(BillingInbox)


@dataclass(frozen=True, slots=True)
class MeterAccount:
    account_id: int
    number: str
    company_no: str
    tariff_id: str
    persons: int
    opened_on: Any  # date
    meter_id: int
    comm_no: str


@dataclass(frozen=True, slots=True)
class Hold:
    """A top-up's (or opening's) hold on meter_credit: in flight from `start` until `end`."""

    account_id: int
    amount_fen: int
    start: datetime
    end: datetime | None  # resolved (posted or voided) at; None: still in flight
    posted: bool = False  # resolved by posting: the meter has the money

    def posted_by(self, at: datetime) -> bool:
        return self.posted and self.end is not None and self.end <= at

    def in_flight_at(self, at: datetime) -> bool:
        return self.start <= at and (self.end is None or self.end > at)


@dataclass(frozen=True, slots=True)
class ReadingAt:
    account_id: int
    at: datetime
    remain_milli: int | None
    curr_price_milli: int | None
    ledger_fen: int


@dataclass(frozen=True, slots=True)
class ReplyAt:
    """A command's stored answer, and for a top-up the ledger's meter_credit then."""

    account_id: int
    meter_id: int
    at: datetime
    return_data: str
    ledger_fen: int = 0


class ReconciliationStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def meter_accounts(
        self,
        *,
        after_id: int,
        limit: int,
        company_no: str | None = None,
        account_ids: Sequence[int] | None = None,
    ) -> list[MeterAccount]:
        """Meter-mode accounts with their active meter, by id after `after_id`."""
        query = (
            sa.select(
                account_t.c.id,
                account_t.c.number,
                account_t.c.company_no,
                account_t.c.tariff_id,
                account_t.c.persons,
                account_t.c.opened_on,
                meter_t.c.id,
                meter_t.c.comm_no,
            )
            .join(binding_t, binding_t.c.account_id == account_t.c.id)
            .join(meter_t, meter_t.c.id == binding_t.c.meter_id)
            .where(
                account_t.c.billing_mode == str(BillingMode.METER),
                binding_t.c.unbound_at.is_(None),
                account_t.c.id > after_id,
            )
            .order_by(account_t.c.id)
            .limit(limit)
        )
        if company_no is not None:
            query = query.where(account_t.c.company_no == company_no)
        if account_ids is not None:
            query = query.where(account_t.c.id.in_(list(account_ids)))
        return [MeterAccount(*row) for row in self.session.execute(query).all()]

    # -- the ledger ---------------------------------------------------------------------
    def holds(self, account_ids: Sequence[int], as_of: datetime) -> list[Hold]:
        """Holds into meter_credit up to `as_of`, with when each was resolved (by `as_of`)."""
        hold, res = transfer_t.alias("hold"), transfer_t.alias("res")
        query = (
            sa.select(
                ledger_t.c.account_id,
                hold.c.amount_fen,
                hold.c.effective_at,
                res.c.effective_at,
                res.c.status,
            )
            .select_from(
                hold.join(ledger_t, ledger_t.c.id == hold.c.credit_account_id).outerjoin(
                    res, sa.and_(res.c.pending_id == hold.c.id, res.c.effective_at <= as_of)
                )
            )
            .where(
                ledger_t.c.account_id.in_(list(account_ids)),
                ledger_t.c.kind == str(AccountKind.METER_CREDIT),
                hold.c.status == "pending",
                hold.c.effective_at <= as_of,
            )
        )
        return [
            Hold(int(a), int(fen), start, end, status == "post_pending")
            for a, fen, start, end, status in self.session.execute(query).all()
        ]

    # -- readings ---------------------------------------------------------------------
    def latest_readings(
        self, account_ids: Sequence[int], as_of: datetime, *, comparable: bool
    ) -> dict[int, ReadingAt]:
        """Each account's latest frozen reading with a balance (with no top-up in flight if
        `comparable`), and its meter_credit as of that reading."""
        r, la = reading_t, ledger_t
        bound = sa.and_(
            binding_t.c.meter_id == meter_t.c.id,
            binding_t.c.bound_at <= r.c.acquisition_time,
            sa.or_(binding_t.c.unbound_at.is_(None), binding_t.c.unbound_at > r.c.acquisition_time),
        )
        latest = (
            sa.select(
                binding_t.c.account_id.label("account_id"),
                la.c.id.label("la_id"),
                r.c.company_no.label("company_no"),
                r.c.meter_comm_no.label("comm_no"),
                sa.func.max(r.c.acquisition_time).label("at"),
            )
            .select_from(
                r.join(
                    meter_t,
                    sa.and_(
                        meter_t.c.company_no == r.c.company_no,
                        meter_t.c.comm_no == r.c.meter_comm_no,
                    ),
                )
                .join(binding_t, bound)
                .outerjoin(
                    la,
                    sa.and_(
                        la.c.account_id == binding_t.c.account_id,
                        la.c.kind == str(AccountKind.METER_CREDIT),
                    ),
                )
            )
            .where(
                binding_t.c.account_id.in_(list(account_ids)),
                r.c.data_type == FROZEN,
                r.c.remain_money.is_not(None),
                r.c.acquisition_time <= as_of,
            )
            .group_by(binding_t.c.account_id, la.c.id, r.c.company_no, r.c.meter_comm_no)
        )
        if comparable:
            latest = latest.where(~_in_flight_at(la.c.id, r.c.acquisition_time, as_of))
        cte = latest.cte("latest")
        r2 = reading_t.alias("r2")
        query = sa.select(
            cte.c.account_id,
            cte.c.at,
            r2.c.remain_money,
            r2.c.curr_price,
            _credit_as_of(cte.c.la_id, cte.c.at),
        ).join(
            r2,
            sa.and_(
                r2.c.company_no == cte.c.company_no,
                r2.c.meter_comm_no == cte.c.comm_no,
                r2.c.data_type == FROZEN,
                r2.c.acquisition_time == cte.c.at,
            ),
        )
        return {
            int(a): ReadingAt(int(a), at, remain, price, int(fen or 0))
            for a, at, remain, price, fen in self.session.execute(query).all()
        }

    def reading_coverage(
        self, meter_ids: Sequence[int], as_of: datetime
    ) -> dict[int, tuple[int, datetime, datetime, int]]:
        """Per meter: frozen readings by `as_of` (count, first, last), and those not yet billed."""
        joined = reading_t.join(
            meter_t,
            sa.and_(
                meter_t.c.company_no == reading_t.c.company_no,
                meter_t.c.comm_no == reading_t.c.meter_comm_no,
            ),
        )
        counts = (
            sa.select(
                meter_t.c.id,
                sa.func.count(),
                sa.func.min(reading_t.c.acquisition_time),
                sa.func.max(reading_t.c.acquisition_time),
            )
            .select_from(joined)
            .where(
                meter_t.c.id.in_(list(meter_ids)),
                reading_t.c.data_type == FROZEN,
                reading_t.c.acquisition_time <= as_of,
            )
            .group_by(meter_t.c.id)
        )
        unbilled = (
            sa.select(meter_t.c.id, sa.func.count())
            .select_from(
                inbox_t.join(
                    meter_t,
                    sa.and_(
                        meter_t.c.company_no == inbox_t.c.company_no,
                        meter_t.c.comm_no == inbox_t.c.meter_comm_no,
                    ),
                )
            )
            .where(
                meter_t.c.id.in_(list(meter_ids)),
                inbox_t.c.handled_at.is_(None),
                inbox_t.c.acquisition_time <= as_of,
            )
            .group_by(meter_t.c.id)
        )
        waiting = {int(m): int(n) for m, n in self.session.execute(unbilled).all()}
        return {
            int(m): (int(n), first, last, waiting.get(int(m), 0))
            for m, n, first, last in self.session.execute(counts).all()
        }

    # -- commands' answers ------------------------------------------------------------------
    def latest_replies(
        self, meter_ids: Sequence[int], ctrl_type: CtrlType, as_of: datetime
    ) -> dict[int, ReplyAt]:
        """Per meter, the latest answered command of a type (by `as_of`), with its return_data.

        For a top-up, the ledger's meter_credit as of its ending comes along:
        its returned `remain` is a checkpoint of the balance.
        """
        c = command_t
        latest = (
            sa.select(c.c.meter_id.label("meter_id"), sa.func.max(c.c.finished_at).label("at"))
            .where(
                c.c.meter_id.in_(list(meter_ids)),
                c.c.ctrl_type == str(ctrl_type),
                c.c.status == str(CommandStatus.DONE),
                c.c.return_data.is_not(None),
                c.c.finished_at <= as_of,
            )
            .group_by(c.c.meter_id)
            .cte("latest_reply")
        )
        c2, la = command_t.alias("c2"), ledger_t
        query = (
            sa.select(
                c2.c.account_id,
                c2.c.meter_id,
                latest.c.at,
                c2.c.return_data,
                _credit_as_of(la.c.id, latest.c.at),
            )
            .select_from(
                latest.join(
                    c2,
                    sa.and_(
                        c2.c.meter_id == latest.c.meter_id,
                        c2.c.finished_at == latest.c.at,
                        c2.c.ctrl_type == str(ctrl_type),
                        c2.c.status == str(CommandStatus.DONE),
                    ),
                ).outerjoin(
                    la,
                    sa.and_(
                        la.c.account_id == c2.c.account_id,
                        la.c.kind == str(AccountKind.METER_CREDIT),
                    ),
                )
            )
            .order_by(c2.c.id)
        )
        found: dict[int, ReplyAt] = {}
        for account_id, meter_id, at, data, fen in self.session.execute(query).all():
            if account_id is not None:
                found[int(meter_id)] = ReplyAt(
                    int(account_id), int(meter_id), at, data, int(fen or 0)
                )
        return found


def _in_flight_at(la_id: Any, at: Any, as_of: datetime) -> sa.Exists:
    """A hold into the ledger account pending at `at`: created by then, not resolved by then."""
    hold, res = transfer_t.alias("h"), transfer_t.alias("hr")
    resolved = (
        sa.select(res.c.seq).where(res.c.pending_id == hold.c.id, res.c.effective_at <= at).exists()
    )
    return (
        sa.select(hold.c.seq)
        .where(
            hold.c.credit_account_id == la_id,
            hold.c.status == "pending",
            hold.c.effective_at <= at,
            hold.c.effective_at <= as_of,
            ~resolved,
        )
        .exists()
    )


def _credit_as_of(la_id: Any, at: Any) -> sa.ScalarSelect[Any]:
    """meter_credit as of `at`: what took effect by then, posted or a posted hold."""
    t = transfer_t.alias("t")
    signed = sa.case((t.c.credit_account_id == la_id, t.c.amount_fen), else_=-t.c.amount_fen)
    return (
        sa.select(sa.func.coalesce(sa.func.sum(signed), 0))
        .where(
            sa.or_(t.c.credit_account_id == la_id, t.c.debit_account_id == la_id),
            t.c.status.in_(POSTED),
            t.c.effective_at <= at,
        )
        .scalar_subquery()
    )
