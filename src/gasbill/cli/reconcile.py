"""`gasbill reconcile`: every meter-mode account against the books (DESIGN §9)."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.cli.options import ConfigOption, settings_from
from gasbill.cli.staff import current_engine
from gasbill.service.reconciliation import Report, reconcile
from gasbill.service.reconciliation_report import render_csv, render_html, render_json


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"
    HTML = "html"


RENDER = {Format.JSON: render_json, Format.CSV: render_csv, Format.HTML: render_html}


def reconcile_command(
    company: Annotated[str | None, typer.Option("--company", help="Only this company_no.")] = None,
    format: Annotated[Format, typer.Option("--format", help="table, json, csv or html.")] = (
        Format.TABLE
    ),
    output: Annotated[
        Path | None, typer.Option("--output", help="Write the report here.", dir_okay=False)
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Compare each meter's balance, top-up counters and price with the ledger and tariff."""
    settings = settings_from(config)
    catalog = TariffCatalog(settings.tariffs.dir, settings.app.timezone)
    with current_engine(settings) as engine:
        report = reconcile(UnitOfWork(engine), catalog, as_of=datetime.now(UTC), company_no=company)
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
    for name in ("account", "meter", "balance", "counters", "price"):
        table.add_column(name)
    for line in report.lines:
        cells = []
        for found in line.findings:
            diff = "" if found.difference is None else f" {found.difference.value:+}"
            cells.append("[green]ok[/]" if found.agrees else f"[red]{found.cause}[/]{diff}")
        table.add_row(
            line.account_number,
            line.meter_comm_no,
            *cells,
        )
    console.print(table)
    t = report.totals
    causes = ", ".join(f"{k} {v}" for k, v in t.by_cause.items() if v)
    console.print(
        f"{t.accounts} accounts checked, {t.agreeing} agree, {t.differing} differ"
        + (f" ({causes})" if causes else "")
        + f"; balance differences sum {t.balance_difference.value}",
        highlight=False,
    )
