"""The value rules of a tariff file's fields, as pydantic validators.

Each check raises a `PydanticCustomError` whose message is the rule broken,
in TOML's words; `at` in its context, when given, names the part of the
field at fault (`[2].persons`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError

from gasbill.domain.cycles import MAX_CYCLE_MONTHS, MIN_CYCLE_MONTHS, local_midnight
from gasbill.domain.money import MILLI, ROUNDING_MODES

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")
ID_RULE = "letters, digits, '-' and '_', starting with a letter or digit"
MAX_DECIMALS = 3
LIMIT = Decimal(10) ** 9  # far above any real price or threshold; keeps storage in int64


def rule_error(kind: str, message: str, at: str | None = None) -> PydanticCustomError:
    # The message is pydantic's template, but only "{at}" could be replaced in it.
    return PydanticCustomError(kind, message, _at(at))


def _at(at: str | None) -> dict[str, Any] | None:
    return None if at is None else {"at": at}


def toml_kind(value: object) -> str:
    """What a value is, in TOML's words, with the value when it is short."""
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, float):
        return f"a binary float ({value!r})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, Decimal):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, datetime):
        return f"a date-time ({value.isoformat()})"
    if isinstance(value, date):
        return f"a date ({value.isoformat()})"
    if isinstance(value, time):
        return f"a time of day ({value.isoformat()})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


def _number(value: object) -> Decimal:
    if isinstance(value, float):
        raise rule_error(
            "float",
            f"is a binary float ({value!r}), which cannot hold prices exactly: tariff numbers "
            "must be exact decimals (TOML is read with parse_float=Decimal)",
        )
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise rule_error("number_type", f"must be a number, not {toml_kind(value)}")
    number = Decimal(value)
    if not number.is_finite():
        raise rule_error("finite", f"must be a finite number, not {value}")
    if abs(number) >= LIMIT:
        raise rule_error("too_large", f"must be below {LIMIT:f}, not {number}")
    return number


def _decimals(number: Decimal, unit: str) -> None:
    if number != number.quantize(MILLI):
        raise rule_error(
            "decimals",
            f"has more than {MAX_DECIMALS} decimals ({number}); {unit} are kept in thousandths",
        )


def _price(value: object) -> Decimal:
    number = _number(value)
    if number < 0:
        raise rule_error("negative", f"must not be negative ({number})")
    _decimals(number, "prices (yuan/m³)")
    return number


def _volume(value: object) -> Decimal:
    number = _number(value)
    if number <= 0:
        raise rule_error("not_positive", f"must be greater than 0 ({number})")
    _decimals(number, "volumes (m³)")
    return number


def _int_between(low: int, high: int | None, what: str) -> Any:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise rule_error("int_type", f"must be a whole number, not {toml_kind(value)}")
        if value < low or (high is not None and value > high):
            allowed = f"{low}..{high}" if high is not None else f"{low} or more"
            raise rule_error("range", f"must be {allowed} {what}, not {value}")
        return value

    return PlainValidator(check)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise rule_error("string_type", f"must be a string, not {toml_kind(value)}")
    text = value.strip()
    if not text:
        raise rule_error("empty", "must not be empty")
    return text


def _tariff_id(value: object) -> str:
    text = _text(value)
    if not ID_PATTERN.match(text):
        raise rule_error("id_pattern", f"{text!r} is not a valid tariff id ({ID_RULE})")
    return text


def _zone(value: object) -> str:
    name = _text(value)
    if not is_zone(name):
        raise rule_error("zone", f"{name!r} is not a known IANA time zone (like 'Asia/Shanghai')")
    return name


def is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _rounding(value: object) -> str:
    if not isinstance(value, str) or value not in ROUNDING_MODES:
        modes = ", ".join(sorted(ROUNDING_MODES))
        raise rule_error("rounding", f"must be one of {modes}, not {toml_kind(value)}")
    return value


def _local_date(value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        hint = " (unquoted)" if isinstance(value, str) else ""
        raise rule_error(
            "date_type", f"must be a TOML local date like 2019-01-01{hint}, not {toml_kind(value)}"
        )
    return value


def _effective(value: object) -> date | datetime:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise rule_error(
                "offset",
                f"must be a local date-time without an offset (it is read in the tariff's "
                f"time zone), not {value.isoformat()}",
            )
        return value
    if isinstance(value, date):
        return value
    hint = " (unquoted)" if isinstance(value, str) else ""
    raise rule_error(
        "date_type",
        f"must be a TOML local date or date-time like 2025-07-01 or 2025-07-01T08:00:00{hint}, "
        f"not {toml_kind(value)}",
    )


PriceValue = Annotated[Decimal, PlainValidator(_price)]
VolumeValue = Annotated[Decimal, PlainValidator(_volume)]
Text = Annotated[str, PlainValidator(_text)]
TariffId = Annotated[str, PlainValidator(_tariff_id)]
Zone = Annotated[str, PlainValidator(_zone)]
Rounding = Annotated[str, PlainValidator(_rounding)]
LocalDate = Annotated[date, PlainValidator(_local_date)]
EffectiveFrom = Annotated[date | datetime, PlainValidator(_effective)]
CycleMonths = Annotated[int, _int_between(MIN_CYCLE_MONTHS, MAX_CYCLE_MONTHS, "months")]
Month = Annotated[int, _int_between(1, 12, "(a calendar month)")]
Persons = Annotated[int, _int_between(1, None, "persons")]
ProrationName = Literal["none", "by_month", "by_day"]
ModeName = Literal["shift", "widen"]
BasisName = Literal["std_sum", "work_sum"]


def localize(value: date | datetime, zone: ZoneInfo, at: str) -> datetime:
    """The aware instant of a local date (its midnight) or a local date-time in `zone`."""
    if not isinstance(value, datetime):
        return local_midnight(value, zone)
    aware = value.replace(tzinfo=zone)
    if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
        raise rule_error(
            "dst_gap", f"{value.isoformat()} does not exist in {zone.key} (clocks skip it)", at
        )
    if aware.replace(fold=1).utcoffset() != aware.utcoffset():
        raise rule_error(
            "dst_fold", f"{value.isoformat()} happens twice in {zone.key} (clocks go back)", at
        )
    return aware
