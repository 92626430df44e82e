"""`gasbill simulate`: the iotmeterv1 platform and a fleet of meters, in accelerated time.

Also `python -m gasbill.cli.simulate` (what the demo spawns): the same command,
loading the simulator and not the rest of gasbill.
"""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from rich.console import Console

from iotsim.api import create_simulator_app
from iotsim.clock import WallPace
from iotsim.faults import FAULTS
from iotsim.fleet import Simulator
from iotsim.push_http import KeepAliveClient
from iotsim.settings import SimulatorSettings, load_simulator_settings

log = logging.getLogger(__name__)
TICK_SECONDS = 0.25  # how often the world is advanced to the wall's simulated time
USAGE_ERROR = 2


def fail(message: str) -> NoReturn:
    """One clear line on stderr, and a non-zero exit (as `gasbill.cli.options.fail`, whose
    module loads gasbill's settings, which the simulator has no use for)."""
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(USAGE_ERROR)


def _settings(
    config: Path | None,
    meters: int | None,
    seed: int | None,
    push_to: str | None,
    faults: str | None,
) -> SimulatorSettings:
    try:
        settings = load_simulator_settings(config) if config else SimulatorSettings()
        changes: dict[str, object] = {}
        if meters is not None:
            changes["meters"] = meters
        if seed is not None:
            changes["seed"] = seed
        if push_to is not None:
            changes["push"] = {**settings.push.model_dump(), "url": push_to}
        if faults:
            changes["faults"] = settings.faults.with_text(faults)
        if "token_clock" not in settings.model_fields_set:
            changes["token_clock"] = "wall"  # clients beside a server read the wall clock
        return settings.with_changes(**changes) if changes else settings
    except ValueError as exc:
        fail(str(exc))


def _advance_forever(sim: Simulator, pace: WallPace, stop: threading.Event) -> None:
    while not stop.wait(TICK_SECONDS):
        try:
            sim.advance(pace.simulated_at(time.monotonic_ns()))
        except Exception:  # keep the world turning; the error is in the log
            log.exception("the simulated world failed to advance")


def simulate_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 2101,
    meters: Annotated[int | None, typer.Option(min=0, help="Meters in the fleet.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed: the same seed, the same world.")] = None,
    speed: Annotated[
        str,
        typer.Option(
            help="Simulated seconds per wall second (3600: an hour a second); "
            "0: the clock moves only when told (POST /_sim/clock/advance)."
        ),
    ] = "3600",
    push_to: Annotated[
        str | None,
        typer.Option("--push-to", help="Base URL of the application to push to (push mode)."),
    ] = None,
    faults: Annotated[
        str | None,
        typer.Option(help=f"Faults as name=probability,... with names: {', '.join(FAULTS)}."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="Simulator settings (TOML).", dir_okay=False),
    ] = None,
) -> None:
    """Serve the simulated platform (remote control and queries) and run its fleet."""
    pace_speed = _speed(speed)
    settings = _settings(config, meters, seed, push_to, faults)
    push_client = None
    if settings.push.url:
        push_client = KeepAliveClient(settings.push.url, timeout=10)
    sim = Simulator(settings, push_client=push_client)
    app = create_simulator_app(sim)
    stop = threading.Event()
    loop = None
    if pace_speed > 0:
        pace = WallPace(sim.now, pace_speed, time.monotonic_ns())
        loop = threading.Thread(target=_advance_forever, args=(sim, pace, stop), daemon=True)
    _announce(sim, settings, host, port, pace_speed if loop else None)
    if loop is not None:
        loop.start()
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        stop.set()
        if loop is not None:
            loop.join(timeout=5)
        if push_client is not None:
            push_client.close()


def _speed(speed: str) -> Decimal:
    """The --speed option: simulated seconds per wall second, 0 or more."""
    try:
        pace_speed = Decimal(speed)
    except InvalidOperation:
        fail(f"--speed: {speed!r} is not a number")
    if not pace_speed.is_finite() or pace_speed < 0:
        fail("--speed must be 0 or more")
    return pace_speed


def _announce(
    sim: Simulator, settings: SimulatorSettings, host: str, port: int, pace_speed: Decimal | None
) -> None:
    """Where the simulated platform listens, its fleet, and its clock's pace (None: the
    clock moves only when told)."""
    comm_nos = sim.comm_nos()
    console = Console()
    console.print(
        f"Simulated platform on http://{host}:{port}/ (docs at /docs): {len(comm_nos)} meters"
        + (f" {comm_nos[0]}..{comm_nos[-1]}" if comm_nos else "")
        + f", seed {settings.seed}, from {sim.now.isoformat()}"
        + (
            f" at {pace_speed}× speed."
            if pace_speed is not None
            else ", the clock moving only when told."
        ),
        highlight=False,
    )
    console.print(
        f"Control API (clock, faults, meters) at http://{host}:{port}/_sim/.", highlight=False
    )
    console.print(
        f"Login {settings.login_name!r}; pushes to {settings.push.url or 'nobody (query mode)'}.",
        highlight=False,
    )


if __name__ == "__main__":
    typer.run(simulate_command)
