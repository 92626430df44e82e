"""What a meter does with each iotmeterv1 command when it wakes (§4.3.2).

`execute` takes the command's ctrl_type and the structure read from its
`ctrl_data` (`iotsim.vendor`), and returns the meter's reply (the structure
its `return_data` carries) or a `Nak` when the meter answered but would not
do it; the platform marks a Nak as failed (state 4). Prepay replies carry
their own flags: a top-up is applied only with 0xaa, refused with 0xbb;
account opening 0 applied, 1 refused.

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

from iotsim import vendor
from iotsim.meter import EventCode, Meter, micro_of, reported
from iotsim.vendor import (
    CHARGE_FAILURE,
    CHARGE_SUCCESS,
    OPEN_FAILURE,
    OPEN_SUCCESS,
    CumulantParam,
    Empty,
    LadderPrice,
    OpenAccountParam,
    OpenAccountReturn,
    Param,
    RemainParam,
    RemoteChargeParam,
    RemoteChargeReturn,
    RemoteChargeState,
    Reply,
)

CALC_TYPE_LADDER = 0

# remote_charge_return.reason when refused
REASON_SEQUENCE = 1  # charge_times is not the meter's count + 1
REASON_TOTAL = 2  # total_value is not the meter's total + charge_value
REASON_NOT_OPENED = 3
REASON_METER_REFUSED = 4  # the meter would not take it (a configured fault)
# open_account_return.reason when refused
REASON_ALREADY_OPENED = 1

NO_LADDER = LadderPrice(
    prices=(Decimal("0.000"),) * 5,
    ladders=(Decimal("0.000"),) * 4,
    cycle_start=date(2000, 1, 1),
    cycle_month=0,
)


@dataclass(frozen=True, slots=True)
class Nak:
    """The meter answered but did not carry the command out."""

    reason: str


def execute(
    meter: Meter, ctrl_type: str, param: Param, at: datetime, *, refuse_charge: bool = False
) -> Reply | Nak:
    """Carry out one command on the meter at `at`: its reply, or a Nak."""
    if isinstance(param, RemoteChargeParam):
        return _remote_charge(meter, param, at, refuse_charge)
    if isinstance(param, OpenAccountParam):
        return _open_account(meter, param, at)
    if isinstance(param, LadderPrice):  # setprice
        meter.set_ladder(param, at)
        return Empty()
    if isinstance(param, RemainParam):  # setremain
        meter.balance_micro = micro_of(param.remain_value)
        meter.settle_valve(at)
        return RemainParam(reported(meter.balance_micro))
    if isinstance(param, CumulantParam):
        meter.std_litres = meter.std_base = int(param.std_sum.scaleb(3))
        meter.work_base = int(param.work_sum.scaleb(3))
        return Empty()
    return _plain(meter, ctrl_type, at)


def _plain(meter: Meter, ctrl_type: str, at: datetime) -> Reply | Nak:
    """The commands whose ctrl_data is "{}"."""
    if ctrl_type == vendor.GET_PRICE:
        return meter.ladder or NO_LADDER
    if ctrl_type == vendor.GET_CHARGE_STATE:
        return charge_state(meter)
    if ctrl_type == vendor.SET_VALVE_ON:
        if meter.exhausted:
            return Nak("余额不足，不能开阀 (the money is exhausted: the valve stays closed)")
        meter.set_remote_off(False, at)
        return Empty()
    if ctrl_type == vendor.SET_VALVE_OFF:
        meter.set_remote_off(True, at)
        return Empty()
    if ctrl_type == vendor.RELEASE_FORCE:
        meter.set_remote_off(False, at)
        return Empty()
    raise TypeError(f"no firmware for {ctrl_type}")


def charge_state(meter: Meter) -> RemoteChargeState:
    return RemoteChargeState(
        card_charge_times=meter.card.times,
        card_charge_value=reported(meter.card.last_micro),
        card_total_value=reported(meter.card.total_micro),
        remote_charge_times=meter.remote.times,
        remote_charge_value=reported(meter.remote.last_micro),
        remote_total_value=reported(meter.remote.total_micro),
    )


def _refused(meter: Meter, reason: int) -> RemoteChargeReturn:
    return RemoteChargeReturn(
        CHARGE_FAILURE, reason, CALC_TYPE_LADDER, reported(meter.balance_micro)
    )


def _remote_charge(
    meter: Meter, param: RemoteChargeParam, at: datetime, refuse: bool
) -> RemoteChargeReturn:
    charge = micro_of(param.charge_value)
    total = micro_of(param.total_value)
    if not meter.opened:
        return _refused(meter, REASON_NOT_OPENED)
    if param.charge_times != meter.remote.times + 1:
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
            "charge_value": param.charge_value,
            "charge_times": param.charge_times,
            "total_value": param.total_value,
        },
    )
    meter.credit(charge, at)
    return RemoteChargeReturn(CHARGE_SUCCESS, 0, CALC_TYPE_LADDER, reported(meter.balance_micro))


def _open_account(meter: Meter, param: OpenAccountParam, at: datetime) -> OpenAccountReturn:
    if meter.opened:
        remain = reported(meter.balance_micro)
        return OpenAccountReturn(OPEN_FAILURE, REASON_ALREADY_OPENED, "表已开户", remain)
    charge = micro_of(param.charge_value)
    meter.opened = True
    meter.balance_micro = charge
    meter.total_buy_micro += charge
    if charge > 0:
        meter.remote.add(charge, micro_of(param.total_value))
    meter.event(
        EventCode.ACCOUNT_OPENED,
        "开户",
        at,
        {"charge_value": param.charge_value, "total_value": param.total_value},
    )
    meter.set_ladder(param.ladder, at)  # a new cycle definition: the count starts here
    return OpenAccountReturn(OPEN_SUCCESS, 0, "", reported(meter.balance_micro))


def opened_directly(meter: Meter, ladder: LadderPrice, balance: Decimal, at: datetime) -> None:
    """A meter installed already opened (no counters moved): for tests and the demo."""
    meter.opened = True
    meter.balance_micro = micro_of(balance)
    meter.set_ladder(ladder, at)
