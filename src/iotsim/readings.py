"""A meter's readings in the platform's wire shape (§3.1.1), every field filled.

Decimals stay `Decimal` (written exactly by `dumps_exact`); times are the
platform's local text. `receive_time` is added when the platform gets it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from iotsim.meter import Meter, litres_text, reported
from iotsim.profile import BASE_PRESSURE, gas_temperature
from iotsim.times import write_time

DEVICE_TYPE_METER = 1
DATA_TYPE_NAMES = {0: "实时数据", 1: "冻结数据"}
LOW_BATTERY_MV = 3_300
EMPTY_BATTERY_MV = 3_000
FULL_BATTERY_MV = 3_650

# meter_state bits
STATE_VALVE_CLOSED = 1
STATE_LOW_BATTERY = 2
STATE_MAGNETIC = 4
STATE_LOW_BALANCE = 8
STATE_NOT_OPENED = 16
STATE_TEXTS = {
    STATE_VALVE_CLOSED: "阀门关闭",
    STATE_LOW_BATTERY: "电池欠压",
    STATE_MAGNETIC: "磁攻击",
    STATE_LOW_BALANCE: "余额不足",
    STATE_NOT_OPENED: "未开户",
}
MILLI = Decimal("0.001")


def _battery_level(mv: int) -> int:
    span = FULL_BATTERY_MV - EMPTY_BATTERY_MV
    return max(0, min(100, (mv - EMPTY_BATTERY_MV) * 100 // span))


def _power_level(mv: int) -> int:
    if mv < 3_100:
        return 2
    return 1 if mv < 3_200 else 0


def meter_state(meter: Meter) -> int:
    state = 0
    if not meter.valve_open:
        state |= STATE_VALVE_CLOSED
    if meter.battery_mv < LOW_BATTERY_MV:
        state |= STATE_LOW_BATTERY
    if meter.magnetic_today:
        state |= STATE_MAGNETIC
    if meter.opened and meter.balance_micro < meter.spec.low_balance_micro:
        state |= STATE_LOW_BALANCE
    if not meter.opened:
        state |= STATE_NOT_OPENED
    return state


def state_text(state: int) -> str:
    texts = [text for bit, text in STATE_TEXTS.items() if state & bit]
    return ";".join(texts) if texts else "正常"


def reading(meter: Meter, at: datetime, data_type: int) -> dict[str, Any]:
    """The reading the meter takes at `at` (data_type 1 frozen, 0 real-time)."""
    local = at.astimezone(meter.zone)
    factor = Decimal(meter.spec.factor_permille).scaleb(-3)
    flow = Decimal(0)
    if meter.valve_open:
        flow = litres_text(meter.shape.litres_per_hour(meter.day_litres, local.hour))
    state = meter_state(meter)
    return {
        "meter_comm_no": meter.comm_no,
        "device_type": DEVICE_TYPE_METER,
        "device_type_name": "物联网表",
        "factory_code": "SIM",
        "meter_area_no": "01",
        "meter_define_no1": f"U{meter.comm_no[-6:]}",
        "meter_define_no2": "",
        "meter_define_no3": "",
        "meter_define_no4": "",
        "data_type": data_type,
        "data_type_name": DATA_TYPE_NAMES[data_type],
        "acquisition_time": write_time(at, meter.zone),
        "std_sum": litres_text(meter.std_litres),
        "work_sum": litres_text(meter.work_litres),
        "std_flow": flow,
        "work_flow": (flow * factor).quantize(MILLI),
        "temperature": gas_temperature(local, meter.temperature_noise),
        "pressure": BASE_PRESSURE + Decimal(meter.temperature_noise).scaleb(-3),
        "magatt_times": meter.magatt_times,
        "this_month_sum": litres_text(meter.month_litres),
        "last_month_sum": litres_text(meter.last_month_litres),
        "this_cycle_sum": litres_text(meter.cycle_litres),
        "last_cycle_sum": litres_text(meter.last_cycle_litres),
        "remain_money": reported(meter.balance_micro),
        "remain_volume": Decimal("0.000"),  # money-mode meters
        "curr_price": Decimal(meter.current_price).scaleb(-3),
        "meter_state": state,
        "meter_stat_emsg": state_text(state),
        "rssi": meter.rssi,
        "battery_voltage": Decimal(meter.battery_mv).scaleb(-3),
        "battery_level": _battery_level(meter.battery_mv),
        "ext_data": _ext_data(meter),
    }


def _ext_data(meter: Meter) -> dict[str, Any]:
    """The reading's `ext_data`: the meter's flags and its purchases."""
    return {
        "rtu_state": 0,
        "rtu_state_msg": "",
        "base_volume": litres_text(meter.std_base),
        "total_buy_value": reported(meter.total_buy_micro),
        "open_state": meter.opened,
        "valve_open": meter.valve_open,
        "power_level": _power_level(meter.battery_mv),
        "remote_valve_off": meter.remote_off,
        "apart_valve_off": False,
        "max_flow_valve_off": False,
        "min_flow_valve_off": False,
        "dead_valve_off": False,
        "magnetic_attack": meter.magnetic_today,
        "ext_power": False,
        "calc_type": 0,
        "pulse_fault": False,
        "battery_cut": False,
        "force_valve_on": False,
        "rtu_door_open": False,
        "rtu_power": False,
        "rtu_fence_alarm": False,
        "rtu_vibrate_alarm": False,
    }
