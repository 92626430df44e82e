"""The reconciliation report as JSON, CSV, and a page with inline-SVG bar charts.

Money and prices are strings (never floats); every value put into HTML is escaped.
"""

from __future__ import annotations

import csv
import io
import json
import re
from html import escape
from typing import Any

from gasbill.domain.reconciliation import AccountLine, Check, Evidence, Finding, Totals
from gasbill.service.reconciliation import Report

CSV_COLUMNS = (
    "account_id",
    "account_number",
    "company_no",
    "meter_comm_no",
    "agrees",
    "check",
    "check_agrees",
    "cause",
    "at",
    "source",
    "meter",
    "expected",
    "difference",
    "note",
    "action",
    "evidence",
)


def _text(value: Any) -> str:
    return "" if value is None else str(value.value if hasattr(value, "value") else value)


def finding_json(found: Finding) -> dict[str, Any]:
    return {
        "agrees": found.agrees,
        "cause": None if found.cause is None else str(found.cause),
        "at": None if found.at is None else found.at.isoformat(),
        "source": found.source,
        "meter": found.meter,
        "expected": found.expected,
        "difference": None if found.difference is None else _text(found.difference),
        "note": found.note,
        "action": found.action,
        "evidence": [evidence_json(e) for e in found.evidence],
    }


def evidence_json(item: Evidence) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "ref": item.ref,
        "at": None if item.at is None else item.at.isoformat(),
        "value": item.value,
    }


def _evidence_text(found: Finding) -> str:
    """Evidence in one CSV cell: `kind ref (value)` separated by `; `."""
    return "; ".join(f"{e.kind} {e.ref} ({e.value})" for e in found.evidence)


def line_json(line: AccountLine) -> dict[str, Any]:
    return {
        "account_id": line.account_id,
        "account_number": line.account_number,
        "company_no": line.company_no,
        "meter_comm_no": line.meter_comm_no,
        "billing_mode": line.billing_mode,
        "agrees": line.agrees,
        "causes": [str(c) for c in line.causes],
        **{str(f.check): finding_json(f) for f in line.findings},
    }


def totals_json(totals: Totals) -> dict[str, Any]:
    return {
        "accounts": totals.accounts,
        "agreeing": totals.agreeing,
        "differing": totals.differing,
        "by_cause": totals.by_cause,
        "by_check": totals.by_check,
        "balance_difference": _text(totals.balance_difference),
        "balance_difference_abs": _text(totals.balance_difference_abs),
        "counters_difference": _text(totals.counters_difference),
        "counters_difference_abs": _text(totals.counters_difference_abs),
    }


def report_json(report: Report) -> dict[str, Any]:
    return {
        "as_of": report.as_of.isoformat(),
        "company_no": report.company_no,
        "include_agreeing": report.include_agreeing,
        "tolerance": {
            "balance": _text(report.tolerance.balance),
            "rounding": _text(report.tolerance.rounding),
            "price": _text(report.tolerance.price),
        },
        "totals": totals_json(report.totals),
        "accounts": [line_json(line) for line in report.lines],
    }


def render_json(report: Report) -> str:
    return json.dumps(report_json(report), ensure_ascii=False, indent=2)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def csv_cell(value: object) -> object:
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a
    leading quote (OWASP CSV injection); plain numbers, negative ones too, stay numbers."""
    formula = isinstance(value, str) and value.startswith(_FORMULA_START)
    if formula and not _PLAIN_NUMBER.fullmatch(str(value)):
        return "'" + str(value)
    return value


def render_csv(report: Report) -> str:
    """One row per account and check; every text cell neutralised (`csv_cell`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.lines:
        for found in line.findings:
            data = finding_json(found)
            writer.writerow(
                csv_cell(cell)
                for cell in [
                    line.account_id,
                    line.account_number,
                    line.company_no,
                    line.meter_comm_no,
                    line.agrees,
                    str(found.check),
                    found.agrees,
                    data["cause"] or "",
                    data["at"] or "",
                    found.source,
                    found.meter,
                    found.expected,
                    data["difference"] or "",
                    found.note,
                    found.action,
                    _evidence_text(found),
                ]
            )
    return out.getvalue()


# -- the page --------------------------------------------------------------------------


def _bars(title: str, counts: dict[str, int]) -> str:
    """A horizontal bar chart of counts, as inline SVG."""
    width, row, label_w = 520, 24, 180
    top = max(counts.values(), default=0) or 1
    height = row * len(counts) + 30
    parts = [
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="16" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (name, n) in enumerate(counts.items()):
        y = 26 + i * row
        bar = (width - label_w - 60) * n // top
        parts.append(f'<text x="0" y="{y + 15}">{escape(name)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{bar}" height="{row - 6}" fill="#4a7bb7"/>'
        )
        parts.append(f'<text x="{label_w + bar + 6}" y="{y + 15}">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


DIFFERENCE_COLUMNS = (
    "account",
    "meter",
    "check",
    "likely cause",
    "at",
    "meter says",
    "books say",
    "difference",
    "note",
    "suggested action",
)


def render_html(report: Report) -> str:
    t = report.totals
    title = f"Reconciliation as of {report.as_of.isoformat()}"
    if report.company_no:
        title += f", company {report.company_no}"
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{escape(title)}</title>",
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}</style>",
            "</head><body>",
            f"<h1>{escape(title)}</h1>",
            _summary_table(t),
            _bars("Accounts by likely cause", t.by_cause),
            _bars(
                "Accounts differing by check", {str(c): t.by_check.get(str(c), 0) for c in Check}
            ),
            "<h2>Differences</h2>",
            "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in DIFFERENCE_COLUMNS) + "</tr>",
            *_difference_rows(report.lines),
            "</table>",
            "</body></html>",
        ]
    )


def _summary_table(t: Totals) -> str:
    """The totals, one row each."""
    summary = {
        "accounts checked": t.accounts,
        "agreeing": t.agreeing,
        "differing": t.differing,
        "sum of balance differences": _text(t.balance_difference),
        "sum of |balance differences|": _text(t.balance_difference_abs),
        "sum of counter differences": _text(t.counters_difference),
    }
    return (
        "<table>"
        + "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in summary.items()
        )
        + "</table>"
    )


def _difference_rows(lines: tuple[AccountLine, ...]) -> list[str]:
    """One table row per finding that differs, in the report's order."""
    rows = []
    for line in lines:
        for found in line.findings:
            if found.agrees:
                continue
            cells = (
                line.account_number,
                line.meter_comm_no,
                str(found.check),
                str(found.cause or ""),
                found.at.isoformat() if found.at else "",
                found.meter,
                found.expected,
                _text(found.difference),
                found.note,
                found.action,
            )
            rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return rows
