"""Domain commands stored as their own fields: the outbox's `command.intent` and a meter's
confirmed ladder (`meter_prepay_state.ladder`), as JSON text.

The stored form is the domain's, not the vendor's wire text: the platform adapter writes
`ctrl_data` only when a command is handed over, so a misread of the vendor's document is
fixed in the codec without touching a stored row. Decimals are kept as their own digits
(strings), dates as ISO days; `command` names the domain class. Migration f5a6b7c8d9e0
converted the rows written before in the wire's shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from gasbill.domain.commands import (
    Command,
    GetChargeState,
    GetPrice,
    LadderPrice,
    OpenAccount,
    ReleaseForce,
    RemoteCharge,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
    SetValveOn,
)
from gasbill.domain.money import Money, Price, Volume

_EMPTY: dict[str, Callable[[], Command]] = {
    cls.__name__: cls for cls in (GetPrice, GetChargeState, SetValveOn, SetValveOff, ReleaseForce)
}


def _text(value: Decimal) -> str:
    return format(value, "f")  # the value's own digits, never an exponent


def ladder_fields(ladder: LadderPrice) -> dict[str, Any]:
    return {
        "prices": [_text(p.value) for p in ladder.prices],
        "ladders": [_text(v.value) for v in ladder.ladders],
        "cycle_start": ladder.cycle_start.isoformat(),
        "cycle_months": ladder.cycle_months,
    }


def ladder_of(fields: Mapping[str, Any]) -> LadderPrice:
    return LadderPrice(
        tuple(Price(Decimal(p)) for p in fields["prices"]),
        tuple(Volume(Decimal(v)) for v in fields["ladders"]),
        date.fromisoformat(fields["cycle_start"]),
        int(fields["cycle_months"]),
    )


def intent_fields(intent: Command) -> dict[str, Any]:
    """The command's own fields, JSON-ready, named by its domain class."""
    fields: dict[str, Any] = {"command": type(intent).__name__}
    if isinstance(intent, SetPrice):
        fields.update(ladder_fields(intent.ladder))
    elif isinstance(intent, OpenAccount):
        fields.update(charge=_text(intent.charge.value), total=_text(intent.total.value))
        fields.update(ladder_fields(intent.ladder))
    elif isinstance(intent, RemoteCharge):
        fields.update(
            charge=_text(intent.charge.value), total=_text(intent.total.value), times=intent.times
        )
    elif isinstance(intent, SetRemain):
        fields.update(value=_text(intent.value.value))
    elif isinstance(intent, SetCumulant):
        fields.update(std_sum=_text(intent.std_sum.value), work_sum=_text(intent.work_sum.value))
    return fields


def intent_of(fields: Mapping[str, Any]) -> Command:
    """The domain command back from its stored fields (checked again by its constructor)."""
    name = fields["command"]
    if name in _EMPTY:
        return _EMPTY[name]()
    if name == "SetPrice":
        return SetPrice(ladder_of(fields))
    if name == "OpenAccount":
        return OpenAccount.of(
            Money(Decimal(fields["charge"])), Money(Decimal(fields["total"])), ladder_of(fields)
        )
    if name == "RemoteCharge":
        return RemoteCharge(
            Money(Decimal(fields["charge"])), Money(Decimal(fields["total"])), int(fields["times"])
        )
    if name == "SetRemain":
        return SetRemain(Money(Decimal(fields["value"])))
    if name == "SetCumulant":
        return SetCumulant(Volume(Decimal(fields["std_sum"])), Volume(Decimal(fields["work_sum"])))
    raise ValueError(f"no domain command is named {name!r}")


# A campaign stores one of a handful of ladders on thousands of rows, in one statement, and
# the dispatcher reads them back a page at a time: the text of each distinct value is made
# (and read) once, not once per row (bench/campaign.py).
@lru_cache(maxsize=1024)
def _intent_text(intent: Command) -> str:
    return json.dumps(intent_fields(intent), separators=(",", ":"), ensure_ascii=False)


@lru_cache(maxsize=1024)
def _intent_from_text(text: str) -> Command:
    return intent_of(json.loads(text))


@lru_cache(maxsize=256)
def _ladder_text(ladder: LadderPrice) -> str:
    return json.dumps(ladder_fields(ladder), separators=(",", ":"))


class IntentColumn(sa.TypeDecorator[Command]):
    """A domain command in, the same command out; JSON text of its fields in between."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Command | None, dialect: Dialect) -> str | None:
        return None if value is None else _intent_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Command | None:
        return None if value is None else _intent_from_text(value)


class LadderColumn(sa.TypeDecorator[LadderPrice]):
    """A meter's `ladder_price` as the domain holds it; JSON text of its fields."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: LadderPrice | None, dialect: Dialect) -> str | None:
        return None if value is None else _ladder_text(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> LadderPrice | None:
        return None if value is None else ladder_of(json.loads(value))
