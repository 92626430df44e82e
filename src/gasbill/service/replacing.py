"""Replacing an account's meter, in either billing mode, as one transaction.

System mode: the old binding closes at the old meter's final register and
the new one opens at the new meter's opening register; billing carries the
account across the two registers.

Meter mode: the old meter holds money, so it is settled first. Its tail
(last reading up to the final register) is billed, then what the books say
it held — the ledger's `meter_credit` — moves back to `prepaid`, and the new
meter is opened remotely with it: `openaccount` carrying the credit as its
charge and total (a hold, posted when the meter confirms, voided back to
`prepaid` if it refuses), then the baseline `getchargestate`, with the
opening's progress shown like an opening's. The meter's last reported
`remain_money` is recorded beside the ledger's figure: a meter's own
balance never posts ledger entries (DESIGN §5), a difference is for
reconciliation and the clerk to see. A prepay command still in flight on
the old meter blocks the replacement: its outcome decides the credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gasbill.domain.accounts import AccountError, BillingMode
from gasbill.domain.ledger import AccountCode, Transfer, TransferKind
from gasbill.domain.money import Money
from gasbill.service.accounts import NotFound, Replacement, replace_within
from gasbill.service.billing import bill_within
from gasbill.service.billing_ports import BillingUnitOfWork as UnitOfWork
from gasbill.service.closing import _no_prepay_in_flight
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.opening import _queue_opening
from gasbill.service.ports import BindingRecord, MeterRecord, TariffBook
from gasbill.service.transfers import namespaced, new_transfer, record_once


@dataclass(frozen=True, slots=True)
class Replaced:
    account_id: int
    old: BindingRecord
    new: BindingRecord
    billing_mode: str
    ledger_credit_fen: int | None = None  # meter mode: moved from meter_credit to prepaid
    meter_remain_fen: int | None = None  # the old meter's last reported remain_money
    credit_transfer: Transfer | None = None
    opening_command_id: int | None = None  # the new meter's openaccount

    @property
    def difference_fen(self) -> int | None:
        """The old meter's last reported balance minus the ledger's credit (meter mode)."""
        if self.meter_remain_fen is None or self.ledger_credit_fen is None:
            return None
        return self.meter_remain_fen - self.ledger_credit_fen


def replace_account_meter(
    uow: UnitOfWork,
    replacement: Replacement,
    *,
    idempotency_key: str,
    actor: str,
    now: datetime,
    catalog: TariffBook,
    policy: CommandPolicy,
) -> Replaced:
    """Replace the account's meter; in meter mode settle the old meter and open the new one."""
    with uow:
        account = uow.accounts.get(replacement.account_id, lock=True)
        if account is None:
            raise NotFound(f"no account {replacement.account_id}")
        if replacement.at > now:
            raise AccountError("the replacement cannot be in the future")
        last_read = _last_read_litres(uow, account.tariff_id, replacement, catalog)
        if account.billing_mode != BillingMode.METER:
            old, new = replace_within(uow, replacement, actor=actor, last_billed_litres=last_read)
            uow.commit()
            return Replaced(replacement.account_id, old, new, account.billing_mode)
        current = uow.accounts.active_binding(replacement.account_id)
        old_meter = uow.accounts.meter_by_id(current.meter_id) if current is not None else None
        remain = None
        if current is not None and old_meter is not None:
            _no_prepay_in_flight(uow, current.meter_id)
            remain = _last_remain_fen(uow, old_meter)
        old, new = replace_within(uow, replacement, actor=actor, last_billed_litres=last_read)
        uow.flush()
        bill_within(uow, [replacement.account_id], catalog=catalog, now=now)
        credit = _credit_back(uow, replacement.account_id, idempotency_key, actor, now)
        command_id = _queue_opening(
            uow,
            account,
            credit.amount if credit is not None else 0,
            f"replace:{idempotency_key}",
            actor,
            now,
            catalog,
            policy,
        )
        result = Replaced(
            replacement.account_id,
            old,
            new,
            account.billing_mode,
            ledger_credit_fen=credit.amount if credit is not None else 0,
            meter_remain_fen=remain,
            credit_transfer=credit,
            opening_command_id=command_id,
        )
        _audit_settlement(uow, result, actor, now)
        uow.commit()
        return result


def _last_read_litres(
    uow: UnitOfWork, tariff_id: str, replacement: Replacement, catalog: TariffBook
) -> int | None:
    """The old meter's register (on the tariff's volume basis) at its latest frozen reading
    since it was bound, up to the replacement, billed or not: the final register may not
    be below it, or billing would run the meter backwards across the switch."""
    binding = uow.accounts.active_binding(replacement.account_id)
    meter = uow.accounts.meter_by_id(binding.meter_id) if binding is not None else None
    if binding is None or meter is None:
        return None
    return uow.accounts.latest_frozen_litres(
        meter.company_no,
        meter.comm_no,
        since=binding.bound_at,
        until=replacement.at,
        basis=catalog.get(tariff_id).volume_basis,
    )


def _last_remain_fen(uow: UnitOfWork, meter: MeterRecord) -> int | None:
    """The old meter's latest reported balance, in fen (stored in thousandths of a yuan)."""
    thousandths = uow.accounts.latest_remain_thousandths(meter.company_no, meter.comm_no)
    return None if thousandths is None else int(thousandths) // 10


def _credit_back(
    uow: UnitOfWork, account_id: int, key: str, actor: str, now: datetime
) -> Transfer | None:
    """What the books say the old meter held, back to prepaid; nothing when it held nothing.

    A negative credit (the shadow billed past what was loaded) stays where it
    is, for the auditor: it is not the customer's money to move.
    """
    source = AccountCode.meter_credit(str(account_id))
    available = uow.ledger.lock([source])[source].available
    if available <= 0:
        return None
    transfer, _ = record_once(
        uow.ledger,
        new_transfer(
            key=namespaced("replace-credit", key),
            debit=source,
            credit=AccountCode.prepaid(str(account_id)),
            amount=available,
            kind=TransferKind.ADJUSTMENT,
            now=now,
            at=now,
            reason="meter replaced: the old meter's credit back to prepaid for the new meter",
            actor=actor,
        ),
        enforce_limits=False,
    )
    return transfer


def _audit_settlement(uow: UnitOfWork, done: Replaced, actor: str, now: datetime) -> None:
    def yuan(fen: int | None) -> str | None:
        return None if fen is None else Money.of_fen(fen).fixed()

    uow.audit.record(
        actor=actor,
        action="meter.replace.settle",
        entity="account",
        entity_id=done.account_id,
        after={
            "ledger_credit": yuan(done.ledger_credit_fen),
            "meter_remain": yuan(done.meter_remain_fen),
            "difference": yuan(done.difference_fen),
            "credit_transfer": done.credit_transfer.id if done.credit_transfer else None,
            "openaccount": done.opening_command_id,
        },
        at=now,
    )
