"""`gasbill demo` (= `make run`): the whole loop, through the product's own doors.

`gasbill simulate` runs in a process of its own — about a hundred meters and
the vendor's platform in front of them — and pushes to the product, which
serves on the port the demo keeps serving on afterwards. A clerk, an admin
and an auditor work over the staff API for about sixty simulated days:
accounts opened remotely, payments becoming top-ups, a tariff change
published and taken to every meter by a campaign, a household running dry,
cut off and reconnected, a bad day on the network settled. The summary is
read from the product's reports; then the staff API and pages keep serving
at the printed URL, with the printed logins, until Ctrl-C.
"""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.config import DatabaseSettings
from gasbill.demo import scenario
from gasbill.demo.live import LiveClock
from gasbill.demo.stage import Stage, free_port
from gasbill.demo.summary import Summary, summarise
from gasbill.domain.money import Money
from iotsim.faults import FaultSettings

DEMO_DB = Path("var/demo.db")
DEMO_DIR = Path("var/demo")
SERVE_PORT = 8000


def _check_port(host: str, port: int) -> None:
    """Refuse before the simulation, not after, when the port is taken."""
    try:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
            probe.bind((host, port))
    except OSError as exc:
        fail(f"cannot serve on {host}:{port} ({exc.strerror}): choose --port")


def demo_command(
    meters: Annotated[int, typer.Option(min=2, max=2000, help="Simulated meters.")] = 100,
    days: Annotated[int, typer.Option(min=3, max=366, help="Simulated days.")] = 60,
    seed: Annotated[int, typer.Option(help="Seed: the same seed, the same run.")] = 1,
    faults: Annotated[
        str,
        typer.Option(
            help="Platform faults, e.g. lost_reply=0.1,applied_timeout=0.05 "
            "(default: one bad day with lost replies)."
        ),
    ] = "",
    exit_after: Annotated[
        bool, typer.Option("--exit", help="Return after the summary instead of serving.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    host: Annotated[str, typer.Option(help="Where the product serves.")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help=f"Its port (default {SERVE_PORT}; with --exit, any free one)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Run the whole loop on a simulated fleet and show that the ledger and the meters agree."""
    settings = settings_from(config)
    port = port or (free_port(host) if exit_after else SERVE_PORT)
    _check_port(host, port)
    fault_settings = _faults(faults)
    _remove_last_run()
    notices = _notices_to_file(DEMO_DB.with_name("demo-warnings.log"))
    url = f"sqlite:///{DEMO_DB}"
    settings = settings.model_copy(update={"database": DatabaseSettings(url=url)})
    console = Console(stderr=as_json)
    stage = Stage.build(
        settings,
        db_url=url,
        work_dir=DEMO_DIR,
        host=host,
        port=port,
        seed=seed,
        meters=meters,
        start=scenario.START,
        faults=fault_settings,
        tariff_id=scenario.TARIFF,
    )
    try:
        cast = _simulate(stage, days=days, seed=seed, faults=fault_settings, console=console)
        summary = summarise(stage, cast, days, warnings_log=notices)
        if as_json:
            print(json.dumps(summary.as_json(), ensure_ascii=False, indent=2))
        else:
            show(console, summary)
            console.print(f"The warnings the customers were sent are in {notices}.")
        if not exit_after:
            serve(console, stage)
    finally:
        stage.close()


def _faults(text: str) -> FaultSettings:
    """The --faults option read, or the usage error that names it."""
    try:
        return FaultSettings().with_text(text) if text else FaultSettings()
    except ValueError as exc:
        fail(f"--faults: {exc}")


def _remove_last_run() -> None:
    """Each demo starts from an empty database (and its audit anchor)."""
    for suffix in ("", "-wal", "-shm", ".audit-anchor"):
        Path(f"{DEMO_DB}{suffix}").unlink(missing_ok=True)


def _simulate(
    stage: Stage, *, days: int, seed: int, faults: FaultSettings, console: Console
) -> scenario.Cast:
    """The scenario's days and the settling after them, with a progress bar (transient
    when the summary goes out as JSON: the console is then stderr's)."""
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("days"),
        TimeElapsedColumn(),
        console=console,
        transient=console.stderr,
    ) as progress:
        task = progress.add_task("days", total=days + 1)
        cast = scenario.run(
            stage, days=days, seed=seed, faults=faults, on_day=lambda day: progress.advance(task)
        )
        scenario.settle(stage, cast)
        progress.advance(task)
    return cast


def _notices_to_file(path: Path) -> Path:
    """The log notifier's warnings go to a file, not over the progress bar."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    notify = logging.getLogger("gasbill.notify")
    notify.handlers[:] = [handler]
    notify.propagate = False
    return path


def show(console: Console, summary: Summary) -> None:
    table = Table(
        title=f"gasbill demo: {summary.meters} meters, {summary.days} days", show_header=False
    )
    table.add_column(justify="left")
    table.add_column(justify="right")
    rows = [
        ("frozen readings stored", f"{summary.readings:,}"),
        ("gas charged (shadow and system billing)", Money.of_fen(summary.charges_fen).fixed()),
        ("charged days", f"{summary.charge_days:,}"),
        ("accounts opened with a first payment", str(summary.openings)),
        ("payments after the openings", str(summary.payments)),
        (
            "top-ups confirmed by meters (incl. openings)",
            f"{summary.top_ups_confirmed} = {Money.of_fen(summary.top_ups_fen).fixed()} yuan",
        ),
        ("top-ups ended unknown, settled against the meter", str(summary.unknown_settled)),
        ("low-balance warnings", str(summary.warnings)),
        ("valves closed / reopened", f"{summary.valve_off} / {summary.valve_on}"),
    ]
    for campaign in summary.campaigns:
        rows.append(
            (
                f"campaign {campaign['tariff']} {campaign['change']}",
                ", ".join(f"{k} {v}" for k, v in campaign["by_status"].items()),
            )
        )
    for kind, n in summary.exceptions.items():
        rows.append((f"exceptions: {kind}", str(n)))
    for label, value in rows:
        table.add_row(label, value)
    table.add_section()
    table.add_row(
        "price-change true-ups (accounts: charged / refunded yuan)",
        f"{summary.true_up_accounts}: {Money.of_fen(summary.true_up_charged_fen).fixed()}"
        f" / {Money.of_fen(summary.true_up_refunded_fen).fixed()}",
    )
    colour = "green" if not summary.in_force_differ else "red"
    table.add_row(
        "meter-mode accounts: charges + true-ups = tariff in force",
        f"[{colour}]{summary.in_force_agree} of "
        f"{summary.in_force_agree + len(summary.in_force_differ)}[/]",
    )
    colour = "green" if summary.readings_agreeing == summary.readings_compared else "red"
    table.add_row(
        "frozen readings: meter = ledger (no top-up in flight)",
        f"[{colour}]{summary.readings_agreeing} of {summary.readings_compared}[/]"
        f" ({summary.readings_in_flight} in flight, not compared)",
    )
    table.add_row("meters agreeing with the ledger", f"[green]{summary.agree}[/]")
    colour = "green" if summary.differ == 0 else "red"
    table.add_row("meters differing", f"[{colour}]{summary.differ}[/]")
    console.print(table)
    for check in summary.checks:
        if not check.agrees:
            console.print(f"  differs: {check}")
    for account in summary.in_force_differ:
        console.print(f"  not the tariff in force: {account}")


def serve(console: Console, stage: Stage) -> None:
    console.print(
        f"\nServing the staff API at {stage.product.url}/docs and the staff pages at "
        f"{stage.product.url}/ui/ (Ctrl-C to stop)."
    )
    for role, password in stage.logins.items():
        console.print(f"  {role}: password {password}", highlight=False)
    console.print(
        "The simulated world lives on: its clock follows yours, and hurries while a command "
        "waits for its meter (meters take commands when they wake, about once a day)."
    )
    live = LiveClock(stage)
    live.start()
    try:
        while stage.product.serving():
            stage.product.wait(0.5)
    except KeyboardInterrupt:
        console.print("Stopping.")
    finally:
        live.stop()
