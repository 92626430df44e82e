"""Tables as CSV and XLSX downloads, with formula cells neutralised.

A spreadsheet runs a cell that starts with = + - or @ as a formula (CSV
injection): such text gets a leading apostrophe. Numbers stay numbers in
XLSX (amounts as exact Decimals turned to strings with two decimals in CSV).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutral(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula, made inert; other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 with a BOM, so that spreadsheet programs read Chinese right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([neutral(h) for h in header])
    for row in rows:
        writer.writerow([neutral(_plain(v)) for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31] or "data")
    sheet.append([neutral(h) for h in header])
    for row in rows:
        sheet.append([neutral(_cell(v)) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _plain(value: Any) -> Any:
    return "" if value is None else value


def _cell(value: Any) -> Any:
    # openpyxl writes Decimals as numbers; keep every other value as given
    if isinstance(value, Decimal):
        return value
    return _plain(value)
