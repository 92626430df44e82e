"""The balance the decisions go by, and the use they forecast with (DESIGN §7)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from gasbill.config import DecisionSettings
from gasbill.domain.accounts import BillingMode
from gasbill.domain.decisions import (
    meter_mode_balance,
)
from gasbill.domain.ledger import AccountCode, Balance
from gasbill.domain.ledger.balances import ZERO_BALANCE
from gasbill.domain.money import Money, Price, Volume
from gasbill.service.decisions.outcomes import JudgedBalance
from gasbill.service.decisions.policies import WINDOW_DAYS
from gasbill.service.ports import AccountRecord, DecisionFacts, MeterRecord, UnitOfWork

# what the decisions read of one account (the decision-state repository's `facts`)
Facts = DecisionFacts


def judge_balance(
    uow: UnitOfWork,
    account: AccountRecord,
    meter: MeterRecord | None,
    *,
    settings: DecisionSettings,
    now: datetime,
) -> JudgedBalance:
    """The balance the decisions go by (DESIGN §7)."""
    assert account.id is not None
    balances = uow.ledger.balances_of(account.id)
    reported = (
        latest_remain(uow, account.id, meter)
        if meter is not None and account.billing_mode != BillingMode.SYSTEM
        else None
    )
    return balance_of(account, balances, reported, settings=settings, now=now)


def judged_balance(facts: Facts, *, settings: DecisionSettings, now: datetime) -> JudgedBalance:
    """`judge_balance` on facts already loaded (`load_facts`)."""
    return balance_of(facts.account, facts.balances, facts.remain, settings=settings, now=now)


def balance_of(
    account: AccountRecord,
    balances: Mapping[AccountCode, Balance],
    reported: tuple[Money, datetime] | None,
    *,
    settings: DecisionSettings,
    now: datetime,
) -> JudgedBalance:
    """The balance from the ledger's balances and the meter's latest reported one."""
    assert account.id is not None
    if account.billing_mode == BillingMode.SYSTEM:
        prepaid = balances.get(AccountCode.prepaid(str(account.id)), ZERO_BALANCE)
        return JudgedBalance(Money.of_fen(prepaid.available), "prepaid")
    credit = balances.get(AccountCode.meter_credit(str(account.id)), ZERO_BALANCE)
    in_flight = Money.of_fen(credit.credits_pending)  # top-up holds not yet confirmed
    stale_after = timedelta(seconds=int(settings.meter_reading_stale_hours * 3600))
    balance = meter_mode_balance(
        reported_remain=reported[0] if reported else None,
        reported_at=reported[1] if reported else None,
        top_ups_in_flight=in_flight,
        # the ledger's view counts the top-ups in flight as well
        meter_credit=Money.of_fen(credit.posted) + in_flight,
        now=now,
        stale_after=stale_after,
    )
    fresh = reported is not None and now - reported[1] <= stale_after
    return JudgedBalance(balance, "meter_reading" if fresh else "meter_credit")


def recent_use(uow: UnitOfWork, account_id: int) -> tuple[list[Volume], Price]:
    """Litres per frozen day (the last 14 billed, oldest first) and the last price charged."""
    return uow.decision_states.recent_use(account_id, window_days=WINDOW_DAYS)


def meter_of(uow: UnitOfWork, account_id: int) -> MeterRecord | None:
    binding = uow.accounts.active_binding(account_id)
    return uow.accounts.meter_by_id(binding.meter_id) if binding is not None else None


def latest_remain(
    uow: UnitOfWork, account_id: int, meter: MeterRecord
) -> tuple[Money, datetime] | None:
    """The meter's latest reported balance (since it was bound to the account), and when."""
    binding = uow.accounts.binding_of_meter(meter.id) if meter.id is not None else None
    if binding is None or binding.account_id != account_id:
        return None
    return uow.decision_states.latest_remain(
        meter.company_no, meter.comm_no, since=binding.bound_at
    )
