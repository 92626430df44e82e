"""What a meter does with each iotmeterv1 command when it wakes (spec §5.4).

`execute` returns the meter's reply (`return_data` as a result of the codec's
types) or a `Nak` when the meter answered but would not do it; the platform
marks a Nak as failed (state 4). Prepay replies carry their own flags:
a top-up is applied only with 0xaa, refused with 0xbb; account opening
0 applied, 1 refused.

The top-up replay guard: `charge_times` must be the meter's remote count + 1
and `total_value` its remote total + `charge_value`; a repeated, skipped or
inconsistent top-up is refused with 0xbb and changes nothing.

`openaccount` counts its initial charge as remote top-up number 1 when it is
above zero (`remote_charge_times` 1, `remote_total_value` = its
`total_value`), so `getchargestate` shows whether an opening was applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from gasbill.domain.commands import (
    CHARGE_APPLIED,
    CHARGE_REFUSED,
    OPEN_APPLIED,
    OPEN_REFUSED,
    Command,
    CommandResult,
    EmptyReturn,
    GetChargeState,
    GetPrice,
    LadderPrice,
    OpenAccount,
    OpenAccountReturn,
    ReleaseForce,
    RemainParam,
    RemoteCharge,
    RemoteChargeReturn,
    RemoteChargeState,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
    SetValveOn,
)
from gasbill.domain.money import Money, Price, Volume
from gasbill.simulator.meter import EventCode, Meter, micro_of, reported

CALC_TYPE_LADDER = 0

# remote_charge_return.reason when refused
REASON_SEQUENCE = 1  # charge_times is not the meter's count + 1
REASON_TOTAL = 2  # total_value is not the meter's total + charge_value
REASON_NOT_OPENED = 3
REASON_METER_REFUSED = 4  # the meter would not take it (a configured fault)
# open_account_return.reason when refused
REASON_ALREADY_OPENED = 1

NO_LADDER = LadderPrice(
    prices=tuple(Price(0) for _ in range(5)),
    ladders=tuple(Volume(0) for _ in range(4)),
    cycle_start=date(2000, 1, 1),
    cycle_months=0,
)


@dataclass(frozen=True, slots=True)
class Nak:
    """The meter answered but did not carry the command out."""

    reason: str


def execute(
    meter: Meter, command: Command, at: datetime, *, refuse_charge: bool = False
) -> CommandResult | Nak:
    if isinstance(command, RemoteCharge):
        return _remote_charge(meter, command, at, refuse_charge)
    if isinstance(command, OpenAccount):
        return _open_account(meter, command, at)
    if isinstance(command, SetPrice):
        meter.set_ladder(command.ladder, at)
        return EmptyReturn()
    if isinstance(command, GetPrice):
        return meter.ladder or NO_LADDER
    if isinstance(command, SetRemain):
        meter.balance_micro = micro_of(command.value.value)
        meter.settle_valve(at)
        return RemainParam(Money(reported(meter.balance_micro)))
    if isinstance(command, GetChargeState):
        return charge_state(meter)
    if isinstance(command, SetValveOn):
        if meter.exhausted:
            return Nak("余额不足，不能开阀 (the money is exhausted: the valve stays closed)")
        meter.set_remote_off(False, at)
        return EmptyReturn()
    if isinstance(command, SetValveOff):
        meter.set_remote_off(True, at)
        return EmptyReturn()
    if isinstance(command, SetCumulant):
        meter.std_litres = meter.std_base = command.std_sum.litres
        meter.work_base = command.work_sum.litres
        return EmptyReturn()
    if isinstance(command, ReleaseForce):
        meter.set_remote_off(False, at)
        return EmptyReturn()
    raise TypeError(f"no firmware for {type(command).__name__}")


def charge_state(meter: Meter) -> RemoteChargeState:
    def money(micro: int) -> Money:
        return Money(reported(micro))

    return RemoteChargeState(
        card_charge_times=meter.card.times,
        card_charge_value=money(meter.card.last_micro),
        card_total_value=money(meter.card.total_micro),
        remote_charge_times=meter.remote.times,
        remote_charge_value=money(meter.remote.last_micro),
        remote_total_value=money(meter.remote.total_micro),
    )


def _refused(meter: Meter, reason: int) -> RemoteChargeReturn:
    return RemoteChargeReturn(
        CHARGE_REFUSED, reason, CALC_TYPE_LADDER, Money(reported(meter.balance_micro))
    )


def _remote_charge(
    meter: Meter, command: RemoteCharge, at: datetime, refuse: bool
) -> RemoteChargeReturn:
    charge = micro_of(command.charge.value)
    total = micro_of(command.total.value)
    if not meter.opened:
        return _refused(meter, REASON_NOT_OPENED)
    if command.times != meter.remote.times + 1:
        return _refused(meter, REASON_SEQUENCE)
    if total != meter.remote.total_micro + charge:
        return _refused(meter, REASON_TOTAL)
    if refuse:
        return _refused(meter, REASON_METER_REFUSED)
    meter.remote.add(charge)
    meter.event(
        EventCode.TOP_UP,
        "远程充值",
        at,
        {
            "charge_value": command.charge.value,
            "charge_times": command.times,
            "total_value": command.total.value,
        },
    )
    meter.credit(charge, at)
    return RemoteChargeReturn(
        CHARGE_APPLIED, 0, CALC_TYPE_LADDER, Money(reported(meter.balance_micro))
    )


def _open_account(meter: Meter, command: OpenAccount, at: datetime) -> OpenAccountReturn:
    remain = Money(reported(meter.balance_micro))
    if meter.opened:
        return OpenAccountReturn(OPEN_REFUSED, REASON_ALREADY_OPENED, "表已开户", remain)
    charge = micro_of(command.charge.value)
    meter.opened = True
    meter.balance_micro = charge
    meter.total_buy_micro += charge
    if charge > 0:
        meter.remote.add(charge, micro_of(command.total.value))
    meter.event(
        EventCode.ACCOUNT_OPENED,
        "开户",
        at,
        {"charge_value": command.charge.value, "total_value": command.total.value},
    )
    meter.set_ladder(command.ladder, at)  # a new cycle definition: the count starts here
    return OpenAccountReturn(OPEN_APPLIED, 0, "", Money(reported(meter.balance_micro)))


def opened_directly(meter: Meter, ladder: LadderPrice, balance: Decimal, at: datetime) -> None:
    """A meter installed already opened (no counters moved): for tests and the demo."""
    meter.opened = True
    meter.balance_micro = micro_of(balance)
    meter.set_ladder(ladder, at)
