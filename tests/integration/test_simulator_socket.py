"""The simulator served over a real socket, as `gasbill simulate` serves it.

What a product or a demo driving it over HTTP meets: the control API moves
the clock, and a lost reply is a connection closed after the status line.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from iotsim.api import create_simulator_app
from iotsim.faults import FaultSettings
from iotsim.fleet import Simulator
from iotsim.settings import SimulatorSettings

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def served() -> Iterator[tuple[Simulator, str]]:
    sim = Simulator(SimulatorSettings(meters=1, start=datetime(2025, 4, 1, tzinfo=ZONE)))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_simulator_app(sim), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    yield sim, f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


def test_driven_over_a_socket(served):
    sim, url = served
    with httpx.Client(base_url=url, timeout=5) as http:
        assert http.post("/_sim/clock/advance", json={"days": 1}).json() == {
            "now": "2025-04-02T00:00:00+08:00"
        }
        pwd = hashlib.md5(b"123456", usedforsecurity=False).hexdigest()
        login = {"loginName": "admin", "pwd": pwd}
        assert http.post("/api/Conf/Account/Login", params=login).json()["State"] == "success"
        http.put("/_sim/faults", json={"lost_reply": 1})
        with pytest.raises(httpx.TransportError):
            http.post("/api/Conf/Account/Login", params=login)
        assert http.get("/_sim/faults").json()["lost_reply"] == "1"  # never faulted itself
    assert sim.faults.settings == FaultSettings(lost_reply=Decimal(1))
