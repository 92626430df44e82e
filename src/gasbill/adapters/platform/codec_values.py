"""Reading the wire's JSON values exactly (the codec's side of it): an object given as one
or as a string holding one, numbers through their own text, never through float."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from gasbill.adapters.platform.jsontext import dumps_exact, loads_exact
from gasbill.domain.commands import wire_decimal
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import MILLI

RAW_LIMIT = 2000  # characters of an unreadable reply kept for a person


class Bad(ValueError):
    """A value that is not what its field needs: the codec makes it a CodecError (a command)
    or an Unreadable result (a reply)."""


def json_object(value: Any) -> dict[str, Any]:
    """A JSON object, given as one or as a string holding one."""
    if value is None:
        raise Bad("missing")
    if isinstance(value, (str, bytes)):
        if not value.strip():
            raise Bad("empty")
        try:
            value = loads_exact(value)
        except ValueError as exc:
            raise Bad(f"not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise Bad(f"not a JSON object but {type(value).__name__}")
    return value


def number_text(obj: Mapping[str, Any], key: str) -> Decimal:
    if key not in obj or obj[key] is None:
        raise Bad(f"{key} is missing")
    value = obj[key]
    if isinstance(value, bool):
        raise Bad(f"{key} is a boolean, not a number")
    try:
        if isinstance(value, float):  # parsed by someone else: its shortest text
            number = Decimal(repr(value))
        elif isinstance(value, (int, Decimal)):
            number = Decimal(value)
        elif isinstance(value, str):
            number = Decimal(value.strip())
        else:
            raise Bad(f"{key} is not a number: {value!r}")
    except InvalidOperation:
        raise Bad(f"{key} is not a number: {value!r}") from None
    if not number.is_finite():
        raise Bad(f"{key} is not finite")
    return number


def returned(obj: Mapping[str, Any], key: str) -> Decimal:
    """A returned double: through its text, quantized to 0.001, within decimal(18,3)."""
    number = number_text(obj, key)
    try:
        quantized = number.quantize(MILLI, rounding=ROUND_HALF_UP)
        return wire_decimal(quantized, key)
    except (InvalidOperation, GasbillError) as exc:
        raise Bad(f"{key} {number} is out of range ({exc})") from None


def exact(obj: Mapping[str, Any], key: str) -> Decimal:
    """A decimal we sent: must fit decimal(18,3) exactly, nothing rounded."""
    try:
        return wire_decimal(number_text(obj, key), key)
    except GasbillError as exc:
        raise Bad(str(exc)) from None


def integer(obj: Mapping[str, Any], key: str) -> int:
    number = number_text(obj, key)
    if number != number.to_integral_value():
        raise Bad(f"{key} is not a whole number: {number}")
    return int(number)


def optional(
    read: Callable[[Mapping[str, Any], str], Any], obj: Mapping[str, Any], key: str
) -> Any:
    return None if obj.get(key) is None else read(obj, key)


def raw_text(value: Any) -> str:
    if isinstance(value, str):
        return value[:RAW_LIMIT]
    try:
        return dumps_exact(value)[:RAW_LIMIT]
    except (TypeError, ValueError):
        return repr(value)[:RAW_LIMIT]
