"""`gasbill quote`: rate a readings file on a tariff and print the charges."""

from __future__ import annotations

import csv
import enum
import json
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from gasbill.adapters.readings_file import ReadingsFileError, read_readings
from gasbill.adapters.tariffs import find_tariff
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.domain.errors import TariffError
from gasbill.domain.money import Money, Price, Volume
from gasbill.domain.rating import RatingResult
from gasbill.domain.tariff import Tariff
from gasbill.service.quote import QuoteError, quote

MAX_TABLE_ROWS = 62  # beyond this the table shows months; csv and json show every period


class OutputFormat(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def quote_command(
    tariff: Annotated[str, typer.Option(help="Tariff id (file stem in the tariffs dir) or path.")],
    readings: Annotated[
        Path, typer.Option(help="CSV (acquisition_time, std_sum, …) or JSON lines of readings.")
    ],
    persons: Annotated[
        int | None, typer.Option(min=1, max=99, help="Persons in the household.")
    ] = None,
    opened: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Account opening date, for proration."),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.table
    ),
    config: ConfigOption = None,
) -> None:
    """Rate frozen readings with a ladder tariff and print the charges."""
    settings = settings_from(config)
    try:
        chosen = find_tariff(tariff, settings.tariffs.dir, default_zone=settings.app.timezone)
        rows = read_readings(readings, ZoneInfo(settings.app.platform_timezone))
        result = quote(
            chosen,
            rows,
            persons=persons,
            opened_on=opened.date() if opened else None,
            max_flow_m3_per_hour=settings.rating.max_flow_m3_per_hour,
            source=str(readings),
        )
    except (TariffError, ReadingsFileError, QuoteError) as exc:
        fail(str(exc))
    render(chosen, result, output)


def render(tariff: Tariff, result: RatingResult, output: OutputFormat) -> None:
    zone = ZoneInfo(tariff.zone)
    if output is OutputFormat.json:
        json.dump(quote_document(tariff, result, zone), sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
    elif output is OutputFormat.csv:
        write_csv(result, zone)
    else:
        print_table(tariff, result, zone)


def exact(money: Money) -> str:
    """An exact amount with at least two decimals: 5.22, 1.234567."""
    value = money.value.normalize()
    if value.as_tuple().exponent >= -2:  # type: ignore[operator]
        return f"{value:.2f}"
    return f"{value:f}"


def _local(instant: datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).isoformat(timespec="seconds")


def quote_document(tariff: Tariff, result: RatingResult, zone: ZoneInfo) -> dict[str, Any]:
    periods = []
    for period in result.periods:
        lines = [
            {
                "tier": line.tier,
                "volume": line.volume.fixed(),
                "price": line.price.fixed(),
                "version": charge.version,
                "cycle": charge.cycle.key,
                "day": charge.day.isoformat(),
                "cost": exact(line.cost),
            }
            for charge, line in period.lines
        ]
        periods.append(
            {
                "from": _local(period.period_from, zone),
                "to": _local(period.period_to, zone),
                "volume": period.volume.fixed(),
                "amount": period.amount.fixed(),
                "lines": lines,
            }
        )
    return {
        "tariff": tariff.id,
        "total": Money.of_fen(result.total_fen).fixed(),
        "volume": Volume.of_litres(sum(p.litres for p in result.periods)).fixed(),
        "periods": periods,
    }


def write_csv(result: RatingResult, zone: ZoneInfo) -> None:
    """One row per charge line; `amount` (rounded) is on each charge's first line."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "period_from",
            "period_to",
            "day",
            "cycle",
            "version",
            "tier",
            "volume",
            "price",
            "cost",
            "amount",
        ]
    )
    for period in result.periods:
        for charge in period.charges:
            for i, line in enumerate(charge.lines):
                writer.writerow(
                    [
                        _local(charge.period_from, zone),
                        _local(charge.period_to, zone),
                        charge.day.isoformat(),
                        charge.cycle.key,
                        charge.version,
                        line.tier,
                        line.volume.fixed(),
                        line.price.fixed(),
                        exact(line.cost),
                        charge.amount.fixed() if i == 0 else "",
                    ]
                )


def print_table(tariff: Tariff, result: RatingResult, zone: ZoneInfo) -> None:
    console = Console()
    by_month = len(result.periods) > MAX_TABLE_ROWS
    title = f"{tariff.name} ({tariff.id})"
    table = Table(
        title=title, caption="by month; --format csv lists every period" if by_month else None
    )
    table.add_column("month" if by_month else "period")
    table.add_column("volume m³", justify="right")
    table.add_column("tiers (m³ @ yuan/m³)")
    table.add_column("amount yuan", justify="right")
    rows: dict[str, list[Any]] = defaultdict(lambda: [0, defaultdict(int), 0])
    for period in result.periods:
        if by_month:
            key = _month_of(period.period_to, zone)
        else:
            key = f"{_local(period.period_from, zone)} → {_local(period.period_to, zone)}"
        row = rows[key]
        row[0] += period.litres
        row[2] += period.amount_fen
        for _, line in period.lines:
            row[1][(line.tier, line.price_milli)] += line.litres
    for key, (litres, tiers, fen) in rows.items():
        tier_text = ", ".join(
            f"T{tier} {Volume.of_litres(v).fixed()} @ {Price.of_milli(p).fixed()}"
            for (tier, p), v in sorted(tiers.items())
        )
        table.add_row(key, Volume.of_litres(litres).fixed(), tier_text, Money.of_fen(fen).fixed())
    total_litres = sum(p.litres for p in result.periods)
    table.add_section()
    table.add_row(
        "total", Volume.of_litres(total_litres).fixed(), "", Money.of_fen(result.total_fen).fixed()
    )
    console.print(table)


def _month_of(period_to: datetime, zone: ZoneInfo) -> str:
    # A freeze at local midnight closes the day before it.
    day: date = (period_to.astimezone(zone) - timedelta(microseconds=1)).date()
    return f"{day:%Y-%m}"
