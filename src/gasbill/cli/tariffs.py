"""`gasbill tariff …`: list, show and check the tariff files."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.tariffs import find_tariff, list_tariffs
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.domain.errors import TariffError

app = typer.Typer(help="Tariff files: list, show, check.", no_args_is_help=True)


@app.command("list")
def list_command(config: ConfigOption = None) -> None:
    """Every tariff in the tariffs directory, validated."""
    settings = settings_from(config)
    try:
        tariffs = list_tariffs(settings.tariffs.dir, default_zone=settings.app.timezone)
    except TariffError as exc:
        fail(str(exc))
    table = Table(title=f"Tariffs in {settings.tariffs.dir}")
    for column in ("id", "name", "versions", "in force from"):
        table.add_column(column)
    for tariff in tariffs:
        table.add_row(
            tariff.id,
            tariff.name,
            str(len(tariff.versions)),
            tariff.versions[0].effective_from.isoformat(timespec="minutes"),
        )
    Console().print(table)


@app.command("show")
def show_command(
    tariff: Annotated[str, typer.Argument(help="Tariff id or path.")], config: ConfigOption = None
) -> None:
    """A tariff's versions, prices, thresholds, cycles and policies."""
    settings = settings_from(config)
    try:
        found = find_tariff(tariff, settings.tariffs.dir, default_zone=settings.app.timezone)
    except TariffError as exc:
        fail(str(exc))
    console = Console()
    console.print(f"[bold]{found.name}[/] ({found.id}) — {found.source}")
    console.print(f"zone {found.zone}, basis {found.volume_basis}, rounding {found.rounding}")
    for version in found.versions:
        table = Table(title=f"version {version.label} from {version.effective_from.isoformat()}")
        table.add_column("tier")
        table.add_column("usage in cycle (m³)")
        table.add_column("price yuan/m³", justify="right")
        for season in version.seasons:
            table.add_column(f"{season.name} (months {sorted(season.months)})", justify="right")
        bounds = [t.value for t in version.thresholds]
        for k, price in enumerate(version.prices):
            low = bounds[k - 1] if k else 0
            span = f"{low} – {bounds[k]}" if k < len(bounds) else f"above {low}"
            table.add_row(
                str(k + 1), span, price.fixed(), *(s.prices[k].fixed() for s in version.seasons)
            )
        console.print(table)
        console.print(
            f"  cycle: {version.cycle.months} month(s) from {version.cycle.anchor}; "
            f"household: {version.household.mode} {list(version.household.bonuses)}; "
            f"opening proration: {version.opening_proration}; "
            f"reset on change: {version.reset_on_change}"
        )


@app.command("check")
def check_command(
    tariff: Annotated[str, typer.Argument(help="Tariff id or path.")],
    meter: Annotated[
        bool, typer.Option("--meter", help="Also check it fits self-billing (meter-mode) meters.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Validate a tariff file (and, with --meter, that meters can hold it)."""
    settings = settings_from(config)
    try:
        found = find_tariff(tariff, settings.tariffs.dir, default_zone=settings.app.timezone)
        if meter:
            found.check_meter_encodable()
    except TariffError as exc:
        fail(str(exc))
    Console().print(f"{found.id}: ok" + (" (fits self-billing meters)" if meter else ""))
