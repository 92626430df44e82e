"""`gasbill demo`: until the whole loop exists, a year of a household quoted."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from gasbill.adapters.tariffs import find_tariff
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.quote import OutputFormat, render
from gasbill.domain.errors import TariffError
from gasbill.domain.rating import Rater, RatingContext
from gasbill.simulator.consumption import frozen_readings

SAMPLE_FILE = Path("var/sample-readings.csv")


def demo_command(
    tariff: Annotated[str, typer.Option(help="Tariff id or path.")] = "beijing-residential",
    year: Annotated[int, typer.Option(min=2000, max=2100, help="Year to simulate.")] = 2025,
    seed: Annotated[int, typer.Option(help="Seed of the simulated household.")] = 1,
    config: ConfigOption = None,
) -> None:
    """Quote a simulated year of daily readings on a shipped tariff."""
    settings = settings_from(config)
    try:
        chosen = find_tariff(tariff, settings.tariffs.dir, default_zone=settings.app.timezone)
    except TariffError as exc:
        fail(str(exc))
    zone = ZoneInfo(chosen.zone)
    first, last = date(year, 1, 1), date(year + 1, 1, 1)
    readings = list(frozen_readings(first, (last - first).days, zone, seed=seed))
    result = Rater(chosen).rate(readings, RatingContext(persons=3))
    if result.anomalies:
        fail(f"the sample readings raised {result.anomalies[0].kind}")

    SAMPLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    with SAMPLE_FILE.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["acquisition_time", "std_sum", "work_sum"])
        for reading in readings:
            writer.writerow(
                [
                    reading.at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                    reading.std_sum.fixed() if reading.std_sum is not None else "",
                    reading.work_sum.fixed() if reading.work_sum is not None else "",
                ]
            )
    console = Console()
    console.print(
        f"A simulated household's {year}: {len(readings) - 1} days of frozen readings "
        f"rated on [bold]{chosen.id}[/] for 3 persons."
    )
    render(chosen, result, OutputFormat.table)
    console.print(f"The readings are in {SAMPLE_FILE}; quote them yourself with")
    console.print(
        f"  .venv/bin/gasbill quote --tariff {chosen.id} --readings {SAMPLE_FILE} --format json",
        soft_wrap=True,
        highlight=False,
    )
