"""Records of a readings file for bulk import: CSV with a header, or JSON lines.

CSV columns are the platform's field names (spec §4.1); numbers are read
through their text (never float) and typed by field, empty cells are
absent. JSON lines are platform reading objects as pushed. Each record comes
with its line number and the reading, validated as a push is (the service's
`PushedReading`), or with the reason it cannot be read or is refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gasbill.adapters.platform.push_models import MeterDataIn, describe
from gasbill.service.importer import Record
from gasbill.service.ingest import DECIMAL_FIELDS

INT_FIELDS = ("data_type", "device_type", "magatt_times", "meter_state", "rssi", "battery_level")


# a line's number and its fields (None when it cannot be read, and why)
_Fields = tuple[int, dict[str, Any] | None, str]


def records(path: Path) -> Iterator[Record]:
    """Each line's reading, validated as a push would be, or why it cannot be read."""
    validate = MeterDataIn.model_validate
    for line, fields, problem in _fields(path):
        if fields is None:
            yield Record(line, None, problem)
            continue
        try:
            reading = validate(fields).record()
        except ValidationError as exc:
            yield Record(line, None, describe(exc))
            continue
        yield Record(line, reading)


def _fields(path: Path) -> Iterator[_Fields]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        first = handle.read(1)
        while first.isspace():
            first = handle.read(1)
        handle.seek(0)
        if first == "{":
            yield from _json_lines(handle)
        else:
            yield from _csv(handle)


def _json_lines(handle: Any) -> Iterator[_Fields]:
    for line, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw, parse_float=Decimal, parse_constant=_refuse)
        except ValueError as exc:
            yield line, None, f"not a JSON object: {exc}"
            continue
        if isinstance(item, dict):
            yield line, item, ""
        else:
            yield line, None, "not a JSON object"


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _csv(handle: Any) -> Iterator[_Fields]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    columns = [(name.strip(), _converter(name.strip())) for name in header]
    for cells in reader:
        if not cells:  # a blank line
            continue
        line = reader.line_num
        fields: dict[str, Any] = {}
        problem = ""
        for (name, convert), cell in zip(columns, cells, strict=False):  # extra cells: ignored
            value = cell.strip()
            if not value:
                continue
            try:
                fields[name] = convert(value)
            except ValueError as exc:
                problem = f"{name}: {exc}"
                break
        yield line, None if problem else fields, problem


def _converter(name: str) -> Callable[[str], Any]:
    if name in INT_FIELDS:
        return _whole
    if name in DECIMAL_FIELDS:
        return _number
    return str


def _whole(value: str) -> int:
    if not value.lstrip("-").isdigit():
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


def _number(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number
