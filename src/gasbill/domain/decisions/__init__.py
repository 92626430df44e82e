"""Decisions: low-balance warnings, valve off and on, tariff pushes due.

Pure functions of an account's state and the time. Each takes the state it
last recorded and returns the new state together with what it decided; the
service layer stores both and carries the decisions out (a notice to the
customer, a command in the outbox). Nothing here reads a clock or does I/O:
`now` is always passed in, and must be aware.

Instants are compared in UTC; local rules are applied in the utility's zone
(see `common`).
"""

from gasbill.domain.accounts import BillingMode
from gasbill.domain.decisions.balance import METER_READING_STALE_AFTER, meter_mode_balance
from gasbill.domain.decisions.common import DEFAULT_ZONE, DecisionError, as_zone
from gasbill.domain.decisions.low_balance import (
    ZERO,
    GasLeft,
    LowBalanceWarning,
    WarningLevel,
    WarningPolicy,
    WarningReason,
    WarningResult,
    WarningState,
    decide_low_balance,
    gas_left,
)
from gasbill.domain.decisions.tariff_push import (
    MeterKey,
    TariffChange,
    TariffPushDue,
    tariff_change_due,
    tariff_pushes_due,
)
from gasbill.domain.decisions.valve import (
    ClosedBy,
    QuietHours,
    ValveHold,
    ValveOff,
    ValveOffResult,
    ValveOn,
    ValveOnResult,
    ValvePolicy,
    ValvePosition,
    ValveState,
    closing_hold,
    decide_valve_off,
    decide_valve_on,
    next_closing_time,
)

__all__ = [
    "DEFAULT_ZONE",
    "METER_READING_STALE_AFTER",
    "ZERO",
    "BillingMode",
    "ClosedBy",
    "DecisionError",
    "GasLeft",
    "LowBalanceWarning",
    "MeterKey",
    "QuietHours",
    "TariffChange",
    "TariffPushDue",
    "ValveHold",
    "ValveOff",
    "ValveOffResult",
    "ValveOn",
    "ValveOnResult",
    "ValvePolicy",
    "ValvePosition",
    "ValveState",
    "WarningLevel",
    "WarningPolicy",
    "WarningReason",
    "WarningResult",
    "WarningState",
    "as_zone",
    "closing_hold",
    "decide_low_balance",
    "decide_valve_off",
    "decide_valve_on",
    "gas_left",
    "meter_mode_balance",
    "next_closing_time",
    "tariff_change_due",
    "tariff_pushes_due",
]
