"""Work off the billing inbox: bill each stored frozen reading exactly once.

Claiming rows, billing their accounts and stamping the rows handled happen in
one transaction. If the process dies anywhere in between, nothing of it is
committed and the rows are claimed again; billing posts only what a day is
still owed, so doing the work again never charges twice. The accounts'
decisions follow, each in a transaction of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from gasbill.crashpoints import crash_point
from gasbill.service.billing import BillingOutcome, bill_within
from gasbill.service.billing_ports import BillingUnitOfWork as UnitOfWork
from gasbill.service.exceptions import record_unknown_meters
from gasbill.service.ports import BindingHistoryRecord, TariffBook

log = logging.getLogger("gasbill.inbox")

# the account's decisions after its balance changed (gasbill.service.decisions), called as
# decide(uow, account_id, now) with the unit of work the caller gave (as CommandPolicy.decide)
Decide = Callable[..., object]


@dataclass(frozen=True, slots=True)
class InboxOutcome:
    claimed: int
    unknown_meter: int
    billing: BillingOutcome


def work_inbox(
    uow: UnitOfWork,
    *,
    catalog: TariffBook,
    limit: int = 1000,
    max_flow_m3_per_hour: Decimal | None = None,
    now: datetime | None = None,
    decide: Decide | None = None,
) -> InboxOutcome:
    now = now or datetime.now(UTC)
    with uow:
        inbox = uow.inbox
        rows = inbox.claim(limit)
        if not rows:
            return InboxOutcome(0, 0, BillingOutcome())
        bindings = inbox.bindings_of([(r.company_no, r.meter_comm_no) for r in rows])
        since: dict[int, datetime] = {}
        outcomes: dict[int, str] = {}
        unknown = []
        for row in rows:
            assert row.id is not None
            history = bindings.get((row.company_no, row.meter_comm_no), [])
            binding = binding_at(history, row.acquisition_time)
            if binding is None and history:
                # history from before the meter was bound (an import, say): kept, not billed
                outcomes[row.id] = "before the meter was bound to an account: not billed"
                continue
            if binding is None:
                outcomes[row.id] = "unknown meter: not billed until it is bound"
                unknown.append(row)
                continue
            account = binding.account_id
            since[account] = min(since.get(account, row.acquisition_time), row.acquisition_time)
            outcomes[row.id] = f"billed on account {account}"
        billing = bill_within(
            uow,
            sorted(since),
            catalog=catalog,
            since=since,
            max_flow_m3_per_hour=max_flow_m3_per_hour,
            now=now,
        )
        record_unknown_meters(
            uow, [(r.company_no, r.meter_comm_no, r.acquisition_time) for r in unknown], now
        )
        inbox.mark_handled(outcomes, now)
        crash_point("inbox.before_commit")
        uow.commit()
    crash_point("inbox.after_commit")
    if decide is not None:
        _decide_each(uow, decide, sorted(since), now)
    return InboxOutcome(len(rows), len(unknown), billing)


def _decide_each(uow: UnitOfWork, decide: Decide, account_ids: list[int], now: datetime) -> None:
    """Decisions right after billing committed, in short transactions of their own.

    Not in billing's transaction: a valve decision appends to the audit chain,
    whose lock is held until commit, and holding it across a whole batch made
    every other worker's billing wait. A decider with `each` (the product's,
    `AccountDecider`) decides the accounts together, committing right after
    each valve decision; a plain one, one transaction per account. An account
    whose decision fails (or a crash before it) is left to the decisions sweep.
    """
    each = getattr(decide, "each", None)  # a decider that decides many at once
    if each is not None:
        try:
            with uow:
                each(uow, account_ids, now)
        except Exception:
            log.exception("decisions after billing failed on accounts %s", account_ids)
        return
    for account_id in account_ids:
        try:
            with uow:
                decide(uow, account_id, now)
                uow.commit()
        except Exception:
            log.exception("decisions after billing failed on account %s", account_id)


def binding_at(
    bindings: Sequence[BindingHistoryRecord], at: datetime
) -> BindingHistoryRecord | None:
    """The binding whose register produced a reading at `at`: (bound_at, unbound_at]."""
    for binding in bindings:
        if binding.bound_at < at and (binding.unbound_at is None or at <= binding.unbound_at):
            return binding
    return None
