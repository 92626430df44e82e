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
from gasbill.domain.money import Money
from gasbill.service.true_up import run_true_ups


def true_up_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Charge or refund what meters billed at other prices than the tariff in force.

    Idempotent: a second run posts only what is still owed or due back.
    """
    settings = settings_from(config)
    catalog = TariffCatalog(settings.tariffs.dir, settings.app.timezone)
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
