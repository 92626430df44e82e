"""`gasbill import readings FILE`: migrate reading history through the push path."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gasbill.adapters.db.engine import is_sqlite
from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.import_file import records
from gasbill.adapters.platform.times import parse_platform_time
from gasbill.bootstrap import bootstrap
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.config import Settings
from gasbill.domain.accounts import AccountError, check_company_no
from gasbill.service.importer import import_readings
from gasbill.service.ingest import IngestPolicy

app = typer.Typer(help="Bulk import.", no_args_is_help=True)


@app.command("readings")
def readings_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or JSON lines.")],
    company: Annotated[str, typer.Option(help="The company (4 digits) the readings belong to.")],
    rejects: Annotated[
        Path | None, typer.Option(help="Where rejected rows go (default FILE.rejects.csv).")
    ] = None,
    batch: Annotated[int, typer.Option(min=1, max=50_000, help="Rows per transaction.")] = 5000,
    writers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=8,
            help="Transactions writing at once while the file is read "
            "(default 2 on PostgreSQL, 1 on SQLite, which has one writer).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Import readings with the push endpoint's validation and dedupe; print a summary."""
    settings = settings_from(config)
    _check_company(settings, company)
    services = bootstrap(settings)
    engine = services.engine
    try:
        ensure_current(engine)
    except DatabaseBehind as exc:
        fail(str(exc))
    rejects = rejects or file.with_name(file.name + ".rejects.csv")
    total = sum(1 for _ in file.open(encoding="utf-8-sig")) or 1
    console = Console(stderr=True)
    with (
        rejects.open("w", newline="", encoding="utf-8") as handle,
        _progress_bar(console) as progress,
    ):
        writer = csv.writer(handle)
        writer.writerow(["line", "reason"])
        task = progress.add_task("rows", total=total)
        summary = import_readings(
            UnitOfWork(engine),
            company,
            records(file),
            _policy(settings),
            batch=batch,
            writers=writers or (1 if is_sqlite(engine) else 2),
            reject=lambda line, reason: writer.writerow([line, reason]),
            progress=lambda n: progress.advance(task, n),
        )
    services.frozen_stored()  # this process bills nothing; a listener elsewhere may
    services.close()
    console.print(
        f"read {summary.read}, stored {summary.stored}, duplicates {summary.duplicates} "
        f"(of which {summary.conflicts} differed and were kept for review), "
        f"rejected {summary.rejected}" + (f" → reasons in {rejects}" if summary.rejected else "")
    )
    if not summary.rejected:
        rejects.unlink()


def _check_company(settings: Settings, company: str) -> None:
    """Refuse a malformed company number, or one whose readings could never be pushed."""
    try:
        check_company_no(company)
    except AccountError as exc:
        fail(str(exc))
    if company not in settings.push.keys:
        fail(
            f"company {company} has no push key in [push] keys: its readings could never "
            "be pushed or queried; add the company first"
        )


def _progress_bar(console: Console) -> Progress:
    """Rows imported of the file's lines, with the time left, gone when done."""
    return Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _policy(settings: Settings) -> IngestPolicy:
    """The push endpoint's rules for a reading: its platform's zone, how far ahead it may be."""
    return IngestPolicy(
        ZoneInfo(settings.app.platform_timezone),
        timedelta(minutes=settings.push.max_future_minutes),
        parse_time=parse_platform_time,
    )
