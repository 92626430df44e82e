"""Readings files for quoting and import: CSV with a header, or JSON lines.

CSV needs at least `acquisition_time` and `std_sum` columns (others are
ignored; `work_sum` is read when present). JSON lines are platform reading
objects (spec §4.1); only frozen readings (data_type 1) are kept, real-time
ones are skipped. Numbers are read through their text, never through float.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gasbill.adapters.platform.times import BadPlatformTime, parse_platform_time
from gasbill.domain.errors import InvalidAmount
from gasbill.domain.money import Volume, to_decimal
from gasbill.domain.rating import FrozenReading

FROZEN = 1


class ReadingsFileError(ValueError):
    """A readings file that cannot be read; the message names the line and the problem."""


@dataclass(frozen=True, slots=True)
class NumberedReading:
    line: int
    reading: FrozenReading


def read_readings(path: Path, zone: ZoneInfo) -> list[NumberedReading]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReadingsFileError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ReadingsFileError(f"{path}: not UTF-8 text ({exc.reason})") from None
    first = text.lstrip()[:1]
    if first in ("{", "["):
        return _read_json_lines(path, text, zone)
    return _read_csv(path, text, zone)


def _read_csv(path: Path, text: str, zone: ZoneInfo) -> list[NumberedReading]:
    reader = csv.DictReader(io.StringIO(text))
    columns = {name.strip() for name in reader.fieldnames or []}
    missing = {"acquisition_time", "std_sum"} - columns
    if missing:
        raise ReadingsFileError(
            f"{path}: line 1: the header needs column(s) {', '.join(sorted(missing))}"
        )
    rows: list[NumberedReading] = []
    for row in reader:
        line = reader.line_num
        fields = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not any(fields.values()):
            continue
        rows.append(NumberedReading(line, _reading(path, line, fields, zone)))
    return rows


def _read_json_lines(path: Path, text: str, zone: ZoneInfo) -> list[NumberedReading]:
    rows: list[NumberedReading] = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise ReadingsFileError(f"{path}: line {line}: not a JSON object ({exc})") from None
        if not isinstance(item, dict):
            raise ReadingsFileError(f"{path}: line {line}: expected a JSON object")
        data_type = item.get("data_type", FROZEN)
        if data_type not in (0, 1) or isinstance(data_type, bool):
            raise ReadingsFileError(f"{path}: line {line}: data_type must be 0 or 1")
        if data_type != FROZEN:
            continue
        rows.append(NumberedReading(line, _reading(path, line, item, zone)))
    return rows


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def _reading(path: Path, line: int, fields: dict[str, Any], zone: ZoneInfo) -> FrozenReading:
    where = f"{path}: line {line}"
    raw_time = fields.get("acquisition_time")
    if not isinstance(raw_time, str) or not raw_time:
        raise ReadingsFileError(f"{where}: acquisition_time is missing")
    try:
        at = parse_platform_time(raw_time, zone)
    except BadPlatformTime as exc:
        raise ReadingsFileError(f"{where}: acquisition_time: {exc}") from None
    std_sum = _volume(where, "std_sum", fields.get("std_sum"))
    if std_sum is None:
        raise ReadingsFileError(f"{where}: std_sum is missing")
    work_sum = _volume(where, "work_sum", fields.get("work_sum"))
    return FrozenReading.of(at, std_sum, work_sum)


def _volume(where: str, name: str, raw: Any) -> Volume | None:
    if raw is None or raw == "":
        return None
    try:
        value = to_decimal(raw, name)
    except InvalidAmount as exc:
        raise ReadingsFileError(f"{where}: {exc}") from None
    if value < 0:
        raise ReadingsFileError(f"{where}: {name}: a register cannot be negative ({raw})")
    if value != value.quantize(Decimal("0.001")):
        raise ReadingsFileError(f"{where}: {name}: more than 3 decimals ({raw})")
    return Volume(value)
