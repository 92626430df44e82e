"""Closing an account: its final reading, its gas billed, its credit paid back, its valve
closed.

In one transaction: the meter is unbound at its final register (the clerk
reads it off the meter; by default its latest frozen reading since it was
bound to the account, on the tariff's volume basis; never below that reading
nor the opening), the account is billed up to it (readings not billed yet,
and the tail from the last one to the final register, which nothing would
bill once the account is closed), what the customer still has is then paid
back through the channel given (the available prepaid money, and in meter
mode the credit the books say the meter holds, net of the shadow's tail), a
`setvalveoff` is queued so no more gas flows on a closed account, and the
account is marked closed. A prepay command still in flight on the meter
blocks the closing: its outcome decides the credit.

The final bill is netted (meter mode): when one of the account's ledger
accounts (prepaid, meter_credit) is below zero after the billing and the
other above it, what the customer still holds pays what it owes first (an
`adjustment` of min(held, owed) from the one to the other, keyed
`close-net:<key>`), and only what stays above zero is paid back; what stays
below is owed, and a later payment settles it (`take_payment` on a closed
account).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gasbill.domain.accounts import AccountError, BillingMode
from gasbill.domain.commands import CtrlType, SetValveOff
from gasbill.domain.ledger import AccountCode, Transfer
from gasbill.domain.money import Volume
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.domain.tariff import VolumeBasis
from gasbill.service.accounts import Conflict, NotFound, snapshot
from gasbill.service.billing import bill_within
from gasbill.service.billing_ports import BillingUnitOfWork
from gasbill.service.commands.queue import CommandPolicy, queue_command
from gasbill.service.ledger import closing_refund
from gasbill.service.payments import held_on_closing, owed_on_closing
from gasbill.service.ports import (
    AccountRecord,
    BindingRecord,
    MeterRecord,
    TariffBook,
    UnitOfWork,
)
from gasbill.service.transfers import move_within_account, namespaced


@dataclass(frozen=True, slots=True)
class Closure:
    account_id: int
    final_register: str | None  # m³
    refunds: tuple[Transfer, ...]
    refunded_fen: int
    valve_command_id: int | None
    billed_fen: int = 0  # what billing up to the final register charged, before the refunds
    netting: Transfer | None = None  # what one of prepaid/meter_credit held paid the other's debt
    owed_fen: int = 0  # what the account still owes after the closing (a later payment settles it)

    @property
    def netted_fen(self) -> int:
        return self.netting.amount if self.netting is not None else 0


def close_account(
    uow: BillingUnitOfWork,
    account_id: int,
    *,
    final_register: Volume | None,
    channel: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
    catalog: TariffBook,
    policy: CommandPolicy,
) -> Closure:
    """Close the account: final reading, the gas billed to it, credit paid back, valve closed;
    audited."""
    with uow:
        account = uow.accounts.get(account_id, lock=True)
        if account is None:
            raise NotFound(f"no account {account_id}")
        if account.status != "active":
            raise Conflict(f"account {account.number} is already {account.status}")
        before = snapshot(account)
        billed_fen = 0
        binding = uow.accounts.active_binding(account_id)
        meter = uow.accounts.meter_by_id(binding.meter_id) if binding is not None else None
        if meter is not None and meter.id is not None:
            _no_prepay_in_flight(uow, meter.id)
        final = final_register
        if binding is not None and meter is not None:
            basis = catalog.get(account.tariff_id).volume_basis
            final = _unbind(uow, binding, meter, final_register, basis, now)
            uow.flush()
            billed = bill_within(uow, [account_id], catalog=catalog, now=now)
            billed_fen = billed.charged_fen - billed.credited_fen
        netting = None
        if account.billing_mode == BillingMode.METER:
            netting = _net(uow, account, idempotency_key, actor, now)
        refunds = _pay_back(
            uow, account_id, account.billing_mode, channel, idempotency_key, actor, now
        )
        owed_fen = _owed(uow, account_id)
        valve_id = None
        if meter is not None:
            valve_id = _close_valve(uow, policy, account, meter, actor, now)
        account.status = "closed"
        uow.accounts.save(account)
        uow.audit.record(
            actor=actor,
            action="account.close",
            entity="account",
            entity_id=account_id,
            before=before,
            after={
                **snapshot(account),
                "final_register": final.fixed() if final is not None else None,
                "billed_fen": billed_fen,
                "netting": netting.id if netting is not None else None,
                "netted_fen": netting.amount if netting is not None else 0,
                "refunds": [t.id for t in refunds],
                "owed_fen": owed_fen,
                "valve_command": valve_id,
            },
            at=now,
        )
        uow.commit()
        return Closure(
            account_id,
            final.fixed() if final is not None else None,
            tuple(refunds),
            sum(t.amount for t in refunds),
            valve_id,
            billed_fen,
            netting,
            owed_fen,
        )


def _unbind(
    uow: UnitOfWork,
    binding: BindingRecord,
    meter: MeterRecord,
    final_register: Volume | None,
    basis: VolumeBasis,
    now: datetime,
) -> Volume | None:
    """The meter unbound at its final register: the one given, else the meter's latest
    frozen reading since it was bound to the account, on the tariff's volume basis (a
    previous account's reading, a real-time one or the other register is never it)."""
    last = uow.accounts.latest_frozen_litres(
        meter.company_no, meter.comm_no, since=binding.bound_at, until=now, basis=basis
    )
    final = final_register
    if final is None and last is not None:
        final = Volume.of_litres(last)
    if final is not None and final.litres < binding.opening_litres:
        raise AccountError(
            f"the final register {final.fixed()} m³ is below the opening "
            f"{Volume.of_litres(binding.opening_litres).fixed()} m³"
        )
    if final is not None and last is not None and final.litres < last:
        raise AccountError(
            f"the final register {final.fixed()} m³ is below the meter's last reading "
            f"({Volume.of_litres(last).fixed()} m³)"
        )
    binding.unbound_at = now
    binding.final_litres = final.litres if final is not None else None
    uow.accounts.save(binding)
    return final


def _close_valve(
    uow: UnitOfWork,
    policy: CommandPolicy,
    account: AccountRecord,
    meter: MeterRecord,
    actor: str,
    now: datetime,
) -> int | None:
    command = queue_command(
        uow,
        SetValveOff(),
        meter=meter,
        now=now,
        policy=policy,
        account_id=account.id,
        reason=f"account {account.number} closed",
        actor=actor,
    )
    return command.id


def _no_prepay_in_flight(uow: UnitOfWork, meter_id: int) -> None:
    store = uow.commands
    for command in store.open_of_meter(meter_id):
        if CtrlType(command.ctrl_type).is_prepay and CommandStatus(command.status) in (
            OPEN | {CommandStatus.UNKNOWN}
        ):
            raise Conflict(
                f"{command.ctrl_type.rsplit('.', 1)[-1]} #{command.id} is still {command.status}: "
                "close the account once it has ended (or cancel it)"
            )
    state = store.prepay_state(meter_id)
    if state.blocked_by is not None:
        raise Conflict(f"command #{state.blocked_by} is being settled with the meter: wait for it")


def _net(
    uow: UnitOfWork, account: AccountRecord, key: str, actor: str, now: datetime
) -> Transfer | None:
    """The final bill netted: if one of prepaid and meter_credit is below zero and the other
    above, min(what the one holds, what the other owes) moved from the one to the other."""
    assert account.id is not None
    prepaid = AccountCode.prepaid(str(account.id))
    credit = AccountCode.meter_credit(str(account.id))
    prepaid_fen, credit_fen = held_on_closing(uow, account.id)
    if prepaid_fen > 0 and credit_fen < 0:
        source, target, amount = prepaid, credit, min(prepaid_fen, -credit_fen)
        owing = "the gas its meter's credit was billed past"
    elif credit_fen > 0 and prepaid_fen < 0:
        source, target, amount = credit, prepaid, min(credit_fen, -prepaid_fen)
        owing = "what its prepaid owes"
    else:
        return None
    return move_within_account(
        uow.ledger,
        key=namespaced("close-net", key),
        debit=source,
        credit=target,
        amount=amount,
        reason=f"account {account.number} closed: what its {source.kind} held settles {owing}",
        actor=actor,
        now=now,
    )


def _owed(uow: UnitOfWork, account_id: int) -> int:
    return owed_on_closing(*held_on_closing(uow, account_id))


def _pay_back(
    uow: UnitOfWork,
    account_id: int,
    mode: str,
    channel: str,
    key: str,
    actor: str,
    now: datetime,
) -> list[Transfer]:
    sources = [AccountCode.prepaid(str(account_id))]
    if mode == BillingMode.METER:
        sources.append(AccountCode.meter_credit(str(account_id)))
    refunds = []
    for source in sources:
        available = uow.ledger.lock([source])[source].available
        if available > 0:
            refunds.append(
                closing_refund(
                    uow,
                    source=source,
                    amount_fen=available,
                    channel=channel,
                    idempotency_key=f"{key}:{source.kind}",
                    actor=actor,
                    now=now,
                )
            )
    return refunds
