"""`gasbill true-up`: run the price-change true-up now (the job runs it daily)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.cli.options import ConfigOption, settings_from
from gasbill.cli.staff import current_engine, terminal_actor
from gasbill.config import Settings
from gasbill.domain.money import Money
from gasbill.service.true_up import run_true_ups
from gasbill.service.true_up_check import in_force_report


def true_up_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Post nothing: compare each meter-mode account's charges plus true-ups with "
            "the tariff in force (the auditor's report; exit 1 when any differs).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Charge or refund what meters billed at other prices than the tariff in force.

    Idempotent: a second run posts only what is still owed or due back.
    """
    settings = settings_from(config)
    catalog = TariffCatalog(settings.tariffs.dir, settings.app.timezone)
    if check:
        _check(settings, catalog, as_json)
        return
    job = settings.jobs.true_up
    with current_engine(settings) as engine:
        outcome = run_true_ups(
            lambda: UnitOfWork(engine),
            catalog=catalog,
            now=datetime.now(UTC),
            batch=job.batch,
            settled_after=timedelta(days=job.settled_after_days),
            max_flow_m3_per_hour=settings.rating.max_flow_m3_per_hour,
            actor=terminal_actor(),
        )
    if as_json:
        typer.echo(json.dumps(outcome.as_json()))
        return
    typer.echo(
        f"{outcome.accounts} accounts re-rated, {outcome.days_changed} days changed: "
        f"{Money.of_fen(outcome.charged_fen).fixed()} yuan charged, "
        f"{Money.of_fen(outcome.refunded_fen).fixed()} yuan refunded, "
        f"{len(outcome.transfers)} ledger lines"
    )


def _check(settings: Settings, catalog: TariffCatalog, as_json: bool) -> None:
    with current_engine(settings) as engine:
        report = in_force_report(
            lambda: UnitOfWork(engine),
            None,
            catalog=catalog,
            now=datetime.now(UTC),
            max_flow_m3_per_hour=settings.rating.max_flow_m3_per_hour,
        )
    totals = report["totals"]
    if as_json:
        typer.echo(json.dumps(report))
    else:
        typer.echo(
            f"{totals['agreeing']} of {totals['accounts']} meter-mode accounts agree with the "
            f"tariff in force ({totals['differing']} differ); true-ups on "
            f"{totals['trued_up_accounts']} accounts, "
            f"{Money.of_fen(totals['trued_up_fen']).fixed()} yuan net"
        )
        for line in report["accounts"]:
            if not line["agrees"]:
                typer.echo(
                    f"  account {line['account_id']}: charged {line['charged_fen']} + true-ups "
                    f"{line['trued_up_fen']} fen, in force {line['in_force_fen']} fen"
                )
    if totals["differing"]:
        raise typer.Exit(1)
