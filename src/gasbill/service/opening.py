"""Opening an account with its first payment; a meter-mode meter is opened remotely.

For a meter-mode account the payment is held for the meter and an
`openaccount` command carries the tariff's prices, whole-m³ thresholds
(household and opening proration applied, rounded down), the cycle and the
initial charge — all in the one transaction that opens the account. The
hold is posted or voided when the meter answers, as for a top-up; a
system-mode account opens without any command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from gasbill.domain.accounts import BillingMode
from gasbill.domain.commands import CtrlType, OpenAccount, ladder_price_for
from gasbill.domain.cycles import Cycle, local_midnight
from gasbill.domain.ledger import Transfer
from gasbill.domain.money import Money, MoneyLimits
from gasbill.domain.rating import RatingContext, opening_share
from gasbill.domain.tariff import TariffVersion
from gasbill.service import ports
from gasbill.service.accounts import NewAccount, NotFound, open_within
from gasbill.service.commands.progress import command_progress
from gasbill.service.commands.queue import (
    CommandPolicy,
    active_meter,
    hold_for_meter,
    queue_command,
)
from gasbill.service.ports import AccountRecord, TariffBook
from gasbill.service.transfers import DEFAULT_LIMITS, payment_transfer, record_once


@dataclass(frozen=True, slots=True)
class Opened:
    account: ports.DecidedAccount
    payment: Transfer | None
    command_id: int | None


def open_with_payment(
    uow: ports.UnitOfWork,
    new: NewAccount,
    *,
    initial_fen: int,
    channel: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
    catalog: TariffBook,
    policy: CommandPolicy,
    limits: MoneyLimits = DEFAULT_LIMITS,
) -> Opened:
    """Open the account, take its first payment and (meter mode) queue the `openaccount`.

    The first payment is bounded like any payment, and on a meter-mode
    account like any top-up, since it goes to the meter: above either
    maximum nothing is opened (`AmountOutOfRange`).
    """
    limits.check("payment", initial_fen)
    if new.billing_mode is BillingMode.METER:
        limits.check("top_up", initial_fen)
    with uow:
        account = open_within(uow, new, catalog=catalog, actor=actor)
        assert account.id is not None
        payment = None
        if initial_fen > 0:
            payment, _ = record_once(
                uow.ledger,
                payment_transfer(
                    account_id=account.id,
                    amount_fen=initial_fen,
                    channel=channel,
                    idempotency_key=idempotency_key,
                    actor=actor,
                    now=now,
                    memo="initial payment",
                    limits=limits,
                ),
            )
        command_id = None
        if new.billing_mode is BillingMode.METER:
            command_id = _queue_opening(
                uow, account, initial_fen, idempotency_key, actor, now, catalog, policy
            )
        uow.commit()
        return Opened(account, payment, command_id)


def meter_opening(
    account: AccountRecord,
    version: TariffVersion,
    tariff_id: str,
    charge_fen: int,
    at: datetime,
    zone: str,
) -> OpenAccount:
    """The `openaccount` for this account: its ladder on the meter, and the first charge."""
    local = at.astimezone(ZoneInfo(zone))
    context = RatingContext(persons=account.persons, opened_on=account.opened_on, whole_m3=True)
    cycle_from, _ = version.cycle.bounds(local.date())
    cycle = Cycle(local_midnight(cycle_from, ZoneInfo(zone)), at, zone)
    share = opening_share(version.opening_proration, version, cycle, context)
    ladder = ladder_price_for(
        version, account.persons, month=local.month, share=share, tariff_id=tariff_id
    )
    charge = Money.of_fen(charge_fen)
    return OpenAccount.of(charge, charge, ladder)


def _queue_opening(
    uow: ports.UnitOfWork,
    account: AccountRecord,
    initial_fen: int,
    key: str,
    actor: str,
    now: datetime,
    catalog: TariffBook,
    policy: CommandPolicy,
) -> int:
    tariff = catalog.get(account.tariff_id)
    version = tariff.version_at(now)
    intent = meter_opening(account, version, tariff.id, initial_fen, now, tariff.zone)
    hold_id = None
    if initial_fen > 0:
        hold_id = hold_for_meter(
            uow,
            account,
            initial_fen,
            key=f"open-hold:{key}",
            actor=actor,
            now=now,
            reason="initial charge on the meter",
        ).id
    command = queue_command(
        uow,
        intent,
        meter=active_meter(uow, account),
        now=now,
        policy=policy,
        account_id=account.id,
        reason=f"open account {account.number} ({version.label})",
        actor=actor,
        hold_id=hold_id,
        amount_fen=initial_fen or None,
    )
    assert command.id is not None
    return command.id


def opening_progress(uow: ports.UnitOfWork, account_id: int) -> list[dict[str, object]]:
    """The account's `openaccount` and the baseline read after it, each where it stands.

    Like a top-up's progress: stage, reason (the meter's refusal in words, a
    login the platform refused …) and the next attempt while it waits.
    """
    with uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"no account {account_id}")
        commands = uow.commands.of_account(account_id, 1000)
        return [
            command_progress(c)
            for c in reversed(commands)
            if c.ctrl_type == CtrlType.OPEN_ACCOUNT
            or (
                c.ctrl_type == CtrlType.GET_CHARGE_STATE
                and c.settles_id is None
                and c.reason.startswith("baseline")
            )
        ]
