"""`gasbill reconcile`: every account against the books (DESIGN §9), with an exit status for cron.

Exit status: 0 every account agrees, 1 some differ, 2 the report could not
be made (bad options, no database, …).
"""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.repositories.reconciliation_readings import readings_report
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli.options import ConfigOption, settings_from
from gasbill.cli.staff import current_engine, current_services
from gasbill.config import Settings
from gasbill.service.reconciliation import Report, parse_as_of, reconcile
from gasbill.service.reconciliation_report import render_csv, render_html, render_json

AGREE, DIFFER, ERROR = 0, 1, 2


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


RENDER = {Format.JSON: render_json, Format.CSV: render_csv, Format.HTML: render_html}


def reconcile_command(
    company: Annotated[str | None, typer.Option("--company", help="Only this company_no.")] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The instant to reconcile at: a date (its end, in the utility's zone) or an "
            "ISO date-time; default now.",
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="List agreeing accounts too (always counted).")
    ] = False,
    format: Annotated[Format, typer.Option("--format", help="table, json, csv or html.")] = (
        Format.TABLE
    ),
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the report here.", dir_okay=False)
    ] = None,
    readings: Annotated[
        bool,
        typer.Option(
            "--readings",
            help="Instead: each meter-mode meter's balance against the ledger at every frozen "
            "reading with no top-up in flight (table or json).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Compare each account with the books: meter-mode meters' balance, counters and price;
    system-mode balances and valves; replaced meters. Exit 0 all agree, 1 differences, 2 error."""
    if readings:
        _readings(settings_from(config), as_json=format is Format.JSON)
        return
    try:
        settings = settings_from(config)
        when = parse_as_of(as_of, zone=settings.app.timezone, now=datetime.now(UTC))
        with current_services(settings) as services:
            report = reconcile(
                UnitOfWork(services.engine),
                services.catalog,
                codec=services.codec,
                as_of=when,
                company_no=company,
                decisions=settings.decisions,
                include_agreeing=every,
                connections=settings.reconcile.connections,
            )
        _write(report, format, output)
    except typer.Exit:
        raise
    except Exception as exc:  # cron must tell a failed run from differences
        typer.echo(f"reconciliation failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(ERROR) from exc
    raise typer.Exit(DIFFER if report.differs else AGREE)


def _write(report: Report, format: Format, output: Path | None) -> None:
    if format is Format.TABLE:
        if output is None:
            _table(Console(), report)
            return
        with output.open("w", encoding="utf-8") as out:
            _table(Console(file=out, width=160), report)
        return
    text = RENDER[format](report)
    if output is not None:
        output.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=not text.endswith("\n"))


def _table(console: Console, report: Report) -> None:
    table = Table(title=f"Reconciliation as of {report.as_of:%Y-%m-%d %H:%M} UTC")
    for name in ("account", "mode", "meter", "check", "likely cause", "difference", "action"):
        table.add_column(name)
    for line in report.lines:
        for found in line.findings:
            if found.agrees:
                if report.include_agreeing:
                    table.add_row(
                        line.account_number, line.billing_mode, line.meter_comm_no,
                        str(found.check), "[green]ok[/]", "", "",
                    )  # fmt: skip
                continue
            diff = "" if found.difference is None else f"{found.difference.value:+}"
            table.add_row(
                line.account_number,
                line.billing_mode,
                line.meter_comm_no,
                str(found.check),
                f"[red]{found.cause}[/]",
                diff,
                found.action,
            )
    console.print(table)
    t = report.totals
    causes = ", ".join(f"{k} {v}" for k, v in t.by_cause.items() if v)
    console.print(
        f"{t.accounts} accounts checked, {t.agreeing} agree, {t.differing} differ"
        + (f" ({causes})" if causes else "")
        + f"; balance differences sum {t.balance_difference.value} yuan",
        highlight=False,
    )


def _readings(settings: Settings, *, as_json: bool) -> None:
    with current_engine(settings) as engine:
        report = readings_report(UnitOfWork(engine))
    totals = cast(dict[str, int], report["totals"])
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(
            f"{totals['agreed']} of {totals['compared']} compared frozen readings agree "
            f"({totals['in_flight']} taken with a top-up in flight, not compared) over "
            f"{totals['accounts']} accounts; {totals['accounts_differing']} accounts differ"
        )
    raise typer.Exit(DIFFER if totals["differing"] else AGREE)
