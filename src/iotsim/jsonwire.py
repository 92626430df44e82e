"""JSON as the simulated platform reads and writes it: numbers kept exact, never a float.

The vendor's platform is a C# service: its `decimal` fields keep their
digits, its `double` fields are written as the shortest text that reads back
to the same value (a whole number with `.0`). Inside the simulator every
number is a `Decimal` read from its own text, and is written back the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


class NotJson(ValueError):
    """A body or a field that is not the JSON it should be; the message says why."""


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_refuse_constant)


def read_json(raw: str | bytes) -> Any:
    """JSON text (UTF-8 bytes or str) with exact decimals; NotJson when it is not JSON."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotJson(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not raw.strip():
        raise NotJson("empty; expected JSON")
    try:
        return _DECODER.decode(raw)
    except json.JSONDecodeError as exc:
        raise NotJson(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None


def number_text(value: Decimal) -> str:
    """A Decimal's own digits, with no exponent."""
    if not value.is_finite():
        raise ValueError(f"{value} is not a number JSON can hold")
    text = format(value, "f")
    return "0" if text in ("0", "-0") else text


def double_text(value: Decimal) -> str:
    """How a C# double holding `value` is written: shortest digits, `.0` when whole."""
    text = number_text(value.normalize()) if value != 0 else "0"
    return text if "." in text else text + ".0"


class Double(Decimal):
    """A value the vendor declares `double`: written by `write_json` as a C# double."""

    __slots__ = ()


def write_json(value: Any) -> str:
    """Compact JSON; Decimal as its digits (Double as a C# double), float refused."""
    if value is None or value is True or value is False:
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float):
        raise TypeError(f"a float ({value!r}) is never written: use Decimal")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Double):
        return double_text(value)
    if isinstance(value, Decimal):
        return number_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return (
            "{" + ",".join(f"{write_json(str(k))}:{write_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, Sequence):
        return "[" + ",".join(write_json(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
