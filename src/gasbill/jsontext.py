"""Exact JSON: numbers with a point are read as Decimal and a Decimal is written as its digits.

A format helper of the standard library alone (no I/O, no framework), shared by the
platform adapter (the vendor's wire) and the service (the replies kept with commands).

Money and volume never pass through binary floating point on the wire:
`loads_exact` refuses NaN and Infinity, `dumps_exact` refuses a float.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


_EXACT = json.JSONDecoder(parse_float=Decimal, parse_constant=_no_constant)  # made once


def loads_exact(text: str | bytes) -> Any:
    """JSON with exact decimals; NaN and Infinity refused (ValueError). As json.loads."""
    if not isinstance(text, str):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _EXACT.decode(text)


def decimal_text(value: Decimal) -> str:
    """A Decimal as a plain JSON number: its exact digits, no exponent."""
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    text = format(value, "f")
    return "0" if text in ("-0", "0") else text


def dumps_exact(value: Any) -> str:
    """Compact JSON text; Decimal written as its digits, float refused."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        raise TypeError(f"a float ({value!r}) is never written: use Decimal")
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{dumps_exact(v)}" for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
