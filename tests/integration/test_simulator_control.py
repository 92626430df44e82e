"""The simulator's control API (/_sim/): clock, faults, meters, commands, summary, over HTTP."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest

from iotsim.fleet import Simulator
from iotsim.settings import SimulatorSettings
from iotsim.transport import SimulatorTransport

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 4, 1, tzinfo=ZONE)
METER = "88600000000007"


def control(sim: Simulator) -> httpx.Client:
    return httpx.Client(base_url="http://platform/_sim", transport=SimulatorTransport(sim))


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimulatorSettings(meters=2, start=START, seed=5))


def test_the_clock_is_read_and_moved(sim):
    http = control(sim)
    assert http.get("/clock").json() == {"now": "2025-04-01T00:00:00+08:00"}
    moved = http.post("/clock/advance", json={"hours": 30})
    assert moved.status_code == 200 and moved.json() == {"now": "2025-04-02T06:00:00+08:00"}
    assert sim.now == datetime(2025, 4, 2, 6, tzinfo=ZONE)
    assert http.post("/clock/advance", json={"until": "2025-04-03T00:00:00+08:00"}).json() == {
        "now": "2025-04-03T00:00:00+08:00"
    }
    assert len(sim.data.readings) == 2  # the world ran: each meter woke and sent its freeze


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"until": "2025-03-01T00:00:00+08:00"}, 409),  # the clock never goes back
        ({"until": "2025-05-01T00:00:00"}, 422),  # no offset
        ({"until": "2025-05-01T00:00:00+08:00", "hours": 1}, 422),
        ({"hours": -1}, 422),
        ({"days": 401}, 422),
        ({"weeks": 1}, 422),
        ("soon", 422),
    ],
)
def test_a_bad_advance_is_refused_and_the_clock_stays(sim, body, status):
    reply = control(sim).post("/clock/advance", json=body)
    assert reply.status_code == status and reply.json()["error"]["message"]
    assert sim.now == START


def test_faults_are_set_and_read(sim):
    http = control(sim)
    assert http.get("/faults").json()["lost_reply"] == "0"
    reply = http.put("/faults", json={"lost_reply": "0.5", "applied_timeout": 0.25})
    assert reply.status_code == 200 and reply.json()["applied_timeout"] == "0.25"
    assert sim.faults.settings.lost_reply == Decimal("0.5")
    too_much = http.put("/faults", json={"cmd_failed": 0.6, "cmd_error": 0.6})
    assert too_much.status_code == 422 and "more than 1" in too_much.json()["error"]["message"]
    assert http.put("/faults", json={"gremlins": 1}).status_code == 422
    assert http.put("/faults", json={"lost_reply": 2}).status_code == 422
    assert sim.faults.settings.lost_reply == Decimal("0.5")
    assert http.put("/faults", json={}).json()["lost_reply"] == "0"  # omitted: none


def test_meters_are_installed_and_read(sim):
    http = control(sim)
    assert http.get("/meters").json() == {"comm_nos": sim.comm_nos()}
    ladder = {
        "price1": 3, "ladder1": 300, "price2": 3.6, "ladder2": 500, "price3": 4.5,
        "ladder3": 500, "price4": 4.5, "ladder4": 500, "price5": 4.5,
        "cycle_start": "2025-01-01", "cycle_month": 12,
    }  # fmt: skip
    body = {"comm_no": METER, "opened": True, "balance": "80.5", "ladder": ladder, "wake": "06:30"}
    added = http.post("/meters", json=body)
    assert added.status_code == 201
    meter = http.get(f"/meters/{METER}").json()
    assert meter == added.json()
    assert (meter["opened"], meter["balance"], meter["remain"]) == (True, 80.5, 80.5)
    assert meter["ladder"]["price2"] == 3.6 and meter["ladder"]["cycle_start"].startswith("2025-01")
    assert meter["wake_time"] == "06:30:00" and meter["remote_charge_times"] == 0
    assert http.post("/meters", json=body).status_code == 409  # installed already
    assert http.post("/meters", json={"comm_no": "123"}).status_code == 422
    bad_ladder = http.post("/meters", json={"opened": True, "ladder": {"price1": 3}})
    assert bad_ladder.status_code == 422 and "ladder" in bad_ladder.json()["error"]["message"]
    assert http.get("/meters/99999999999999").status_code == 404
    card = http.post(f"/meters/{METER}/card-top-up", json={"value": "20"})
    assert card.json()["card_charge_times"] == 1 and card.json()["balance"] == 100.5
    assert http.post(f"/meters/{METER}/card-top-up", json={"value": "-1"}).status_code == 422


def test_commands_and_summary(sim):
    platform = httpx.Client(base_url="http://platform/", transport=SimulatorTransport(sim))
    pwd = hashlib.md5(b"123456", usedforsecurity=False).hexdigest()
    token = platform.post("/api/Conf/Account/Login", params={"loginName": "admin", "pwd": pwd})
    command = {
        "processor_name": "iotmeterv1", "ctrl_define_no": "c-1",
        "target_comm_no": sim.comm_nos()[0], "target_devtype": 1,
        "ctrl_type": "iotmeterv1.common.setvalveoff", "ctrl_data": "{}",
    }  # fmt: skip
    platform.post(
        "/api/Conf/CtrlData/Add", json=command, headers={"token": token.json()["Data"]["token"]}
    )
    http = control(sim)
    (record,) = http.get("/commands").json()
    assert (record["ctrl_state"], record["applied"], record["ctrl_define_no"]) == (0, 0, "c-1")
    http.post("/clock/advance", json={"days": 1})
    (record,) = http.get("/commands").json()
    assert (record["ctrl_state"], record["applied"]) == (3, 1)
    summary = http.get("/summary").json()
    assert summary["meters"] == 2 and summary["commands"] == {"3": 1}
    assert summary["now"] == "2025-04-02T00:00:00+08:00"
    assert http.post("/push/flush").json() == {"pending": 0}  # query mode: nothing to push


def test_a_control_key_is_required_when_set():
    settings = SimulatorSettings(meters=1, start=START, control_key="sesame")
    http = control(Simulator(settings))
    assert http.get("/clock").status_code == 401
    assert http.get("/clock", headers={"X-Sim-Key": "wrong"}).status_code == 401
    assert http.get("/clock", headers={"X-Sim-Key": "sesame"}).status_code == 200


def test_reply_faults_never_touch_the_control_api(sim):
    sim.set_faults(sim.faults.settings.model_copy(update={"lost_reply": Decimal(1)}))
    assert control(sim).get("/clock").status_code == 200
