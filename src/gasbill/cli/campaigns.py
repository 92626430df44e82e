"""`gasbill campaign list|show|retry`: tariff campaigns, as the staff API shows them."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.service.campaign_progress import campaign_progress, campaigns
from gasbill.service.campaign_retry import retry_failed_meters

app = typer.Typer(help="Tariff campaigns: list, show, retry.", no_args_is_help=True)

CampaignArg = Annotated[int, typer.Argument(min=1, help="The campaign's id.")]
SHOWN = ("campaign_id", "tariff_id", "label", "status", "total", "confirmed", "verified", "failed")


@app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every campaign: n of m confirmed, verified, failed."""
    settings = settings_from(config)
    with current_services(settings) as services:
        found = campaigns(services.uow())
    table = Table(title="tariff campaigns")
    for column in SHOWN:
        table.add_column(column.replace("_", " "))
    for progress in found:
        table.add_row(*(str(getattr(progress, name)) for name in SHOWN))
    Console().print(table)


@app.command("show")
def show_command(campaign: CampaignArg, config: ConfigOption = None) -> None:
    """One campaign: its counts, whatever totals it reports, and each failure's reason."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            progress = campaign_progress(services.uow(), campaign)
        except LookupError as exc:
            fail(str(exc))
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]campaign {progress.campaign_id}[/]: {progress.tariff_id} {progress.label}, "
        f"effective {progress.effective_at.isoformat(timespec='minutes')}, {progress.status}"
    )
    console.print(progress.summary)
    for name, value in _extra(progress).items():
        console.print(f"{name.replace('_', ' ')}: {value}")
    if progress.failures:
        table = Table(title="failed meters")
        for column in ("account", "meter", "reason"):
            table.add_column(column)
        for failure in progress.failures:
            table.add_row(str(failure.account_id), failure.meter_comm_no, failure.reason)
        console.print(table)


def _extra(progress: Any) -> dict[str, Any]:
    """Fields beyond the counts (true-up totals, say), shown as they come."""
    known = {*SHOWN, "effective_at", "queued", "sent", "failures"}
    if not is_dataclass(progress) or isinstance(progress, type):
        return {}
    values = asdict(progress)
    return {f.name: values[f.name] for f in fields(progress) if f.name not in known}


@app.command("retry")
def retry_command(campaign: CampaignArg, config: ConfigOption = None) -> None:
    """Send the change again to every failed meter of the campaign."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            outcome = retry_failed_meters(
                services.uow(),
                campaign,
                catalog=services.catalog,
                policy=services.command_policy,
                actor=terminal_actor(),
                now=services.now(),
            )
        except GasbillError as exc:
            fail(str(exc))
    console = Console(highlight=False, soft_wrap=True)
    console.print(f"campaign {campaign}: {len(outcome.retried)} meter(s) sent the change again")
    for meter_id, why in outcome.still_failed:
        console.print(f"  meter {meter_id} not retried: {why}")
