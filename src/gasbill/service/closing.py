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
from gasbill.service.ports import (
    AccountRecord,
    BindingRecord,
    MeterRecord,
    TariffBook,
    UnitOfWork,
)


@dataclass(frozen=True, slots=True)
class Closure:
    account_id: int
    final_register: str | None  # m³
    refunds: tuple[Transfer, ...]
    refunded_fen: int
    valve_command_id: int | None
    billed_fen: int = 0  # what billing up to the final register charged, before the refunds


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
        refunds = _pay_back(
            uow, account_id, account.billing_mode, channel, idempotency_key, actor, now
        )
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
                "refunds": [t.id for t in refunds],
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
