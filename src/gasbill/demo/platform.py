"""The demo's platform: `gasbill simulate` in a process of its own, on a real socket.

The product talks to it as it would to the vendor's platform (remote control
under /api/Conf, pushes to the product's /api/Data and /api/Conf/CtrlData/Report).
The demo drives the simulated world through the simulator's own control API
(`/_sim/`): its clock moves only when told (`--speed 0`), and the households
read their meters' displays there.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from iotsim.faults import FaultSettings

STARTUP_SECONDS = 120.0  # two Python processes importing on a loaded machine
LOGIN = "admin"
PASSWORD = "123456"
PUSH_CONCURRENCY = 16


class SimulatorGone(RuntimeError):
    """The simulator process stopped or did not answer in time."""


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_settings(
    path: Path, *, seed: int, meters: int, start: datetime, faults: FaultSettings
) -> Path:
    """The simulator's TOML: the fleet, a reading at each wake-up, the faults, its pushes."""
    lines = [
        f"seed = {seed}",
        f"meters = {meters}",
        f"start = {_toml_value(start)}",
        "realtime_readings = true",  # a reading at each wake-up: where a command took effect
        f"login_name = {_toml_value(LOGIN)}",
        f"password = {_toml_value(PASSWORD)}",
        "[faults]",
        *(f"{k} = {_toml_value(v)}" for k, v in faults.model_dump().items()),
        "[push]",
        # a wake-up's readings in flight at once, stored by the product in one transaction
        # (group commit); a command's report still goes alone, in its place
        f"concurrency = {PUSH_CONCURRENCY}",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class SimulatorProcess:
    """`gasbill simulate --speed 0` on `port`, pushing to the product at `push_to`."""

    def __init__(self, config: Path, *, port: int, push_to: str, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        args = [
            sys.executable, "-m", "gasbill.cli.simulate",
            "--port", str(port), "--speed", "0", "--push-to", push_to, "--config", str(config),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("GASBILL_")}
        self._log = log.open("wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        # advancing a day pushes a day of the fleet's readings before it answers
        self.http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(10, read=600))

    def wait_ready(self, timeout: float = STARTUP_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SimulatorGone(f"the simulator exited with {self.process.returncode}")
            try:
                if self.http.get("/_sim/clock").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise SimulatorGone(f"the simulator did not answer within {timeout:.0f} s")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        answer = self.http.request(method, f"/_sim{path}", json=body)
        if answer.status_code >= 400:
            raise SimulatorGone(f"{method} /_sim{path}: {answer.status_code} {answer.text[:200]}")
        return answer.json()

    def now(self) -> datetime:
        return datetime.fromisoformat(self._call("GET", "/clock")["now"])

    def advance(self, until: datetime) -> datetime:
        """Run the world to `until`; every push due by then has been sent when this returns."""
        return datetime.fromisoformat(
            self._call("POST", "/clock/advance", {"until": until.isoformat()})["now"]
        )

    def set_faults(self, faults: FaultSettings) -> None:
        self._call("PUT", "/faults", faults.model_dump(mode="json"))

    def comm_nos(self) -> list[str]:
        return list(self._call("GET", "/meters")["comm_nos"])

    def meters(self) -> dict[str, dict[str, Any]]:
        """Every meter's state (its display and counters), by comm_no."""
        return {m["comm_no"]: m for m in self._call("GET", "/fleet")["meters"]}

    def close(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()
