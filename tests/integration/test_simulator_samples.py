"""The simulated platform against the vendor's own samples (tests/fixtures/vendor), over HTTP.

Raw HTTP, no gasbill client: what the simulator serves must have the keys,
the types and the texts the document's samples show, and it must take the
document's request bodies (with the samples' "iotmeter" illustrations made
iotmeterv1 commands for a meter it has).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from iotsim.fleet import Simulator
from iotsim.pusher import Push, Pusher
from iotsim.settings import SimulatorSettings
from iotsim.transport import SimulatorTransport
from tests.vendor_samples import sample

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 4, 1, tzinfo=ZONE)
METER = "88600000000001"
V1 = {"processor_name": "iotmeterv1", "target_comm_no": METER,
      "ctrl_type": "iotmeterv1.common.setvalveoff"}  # fmt: skip


def kinds(obj: dict[str, Any]) -> dict[str, type]:
    return {k: type(v) for k, v in obj.items()}


@pytest.fixture
def sim() -> Simulator:
    simulator = Simulator(SimulatorSettings(meters=0, start=START, seed=3))
    simulator.add_meter(METER, opened=True, balance=Decimal(100), wake=time(4))
    return simulator


@pytest.fixture
def http(sim: Simulator) -> httpx.Client:
    client = httpx.Client(base_url="http://platform/", transport=SimulatorTransport(sim))
    pwd = hashlib.md5(b"123456", usedforsecurity=False).hexdigest()
    login = client.post("/api/Conf/Account/Login", params={"loginName": "admin", "pwd": pwd})
    client.headers["token"] = login.json()["Data"]["token"]
    return client


def post(http: httpx.Client, path: str, body: Any = None) -> httpx.Response:
    content = None if body is None else json.dumps(body, ensure_ascii=False, default=str)
    return http.post(path, content=content, headers={"content-type": "application/json"})


def test_login_reply_is_the_samples_shape(sim):
    client = httpx.Client(base_url="http://platform/", transport=SimulatorTransport(sim))
    pwd = hashlib.md5(b"123456", usedforsecurity=False).hexdigest().upper()
    reply = client.post("/api/Conf/Account/Login", params={"loginName": "admin", "pwd": pwd}).json()
    expected = sample("2.2.2-login-reply")
    assert list(reply) == list(expected) and kinds(reply["Data"]) == kinds(expected["Data"])
    assert len(reply["Data"]["token"]) == len(expected["Data"]["token"]) == 384
    # .NET's seven fractional digits and the offset, as the sample's expiration
    assert len(reply["Data"]["expiration"]) == len(expected["Data"]["expiration"])
    assert reply["Data"]["expiration"].endswith("+08:00")


def test_the_add_sample_is_taken_as_an_iotmeterv1_command(http):
    verbatim = post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add"))
    assert verbatim.status_code == 422 and "processor_name" in verbatim.json()["Message"]
    added = post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add") | V1).json()
    assert added == sample("4.2.1-add-reply")  # {"Data": 1, ...}: the first ctrl_id


def test_get_model_and_get_list_replies_are_the_samples_shape(http):
    post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add") | V1)
    model = post(http, "/api/Conf/CtrlData/GetModel/1").json()
    expected = sample("4.2.4-get-model-reply")
    assert list(model) == list(expected)
    assert list(model["Data"]) == list(expected["Data"])
    assert kinds(model["Data"]) == kinds(expected["Data"])
    assert model["Data"]["ctrl_time"] == "2017-04-17T00:00:00"  # the sample's date, as written
    assert model["Data"]["ctrl_state_msg"] == expected["Data"]["ctrl_state_msg"] == "等待发送"
    missing = post(http, "/api/Conf/CtrlData/GetModel/99").json()
    assert (missing["State"], missing["Data"]) == ("failed", None)  # 失败返回 null

    wanted = sample("4.2.5-get-list") | V1 | {"ctrl_define_no": "1234567890"}
    listed = post(http, "/api/Conf/CtrlData/GetList?startrow=0&rowcount=2", wanted).json()
    expected = sample("4.2.5-get-list-reply")
    assert list(listed) == list(expected)
    assert (listed["Totalcount"], listed["Startrow"], listed["Rowcount"]) == (1, 0, 1)
    assert list(listed["Data"][0]) == list(expected["Data"][0])


def test_update_takes_the_whole_record_of_the_sample(http):
    post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add") | V1)
    updated = post(http, "/api/Conf/CtrlData/Update", sample("4.2.2-update") | V1).json()
    assert updated == sample("4.2.2-update-reply")
    record = post(http, "/api/Conf/CtrlData/GetModel/1").json()["Data"]
    assert (record["sync_msg"], record["ctrl_state"]) == ("syncmsg", 0)


def test_batches_take_the_samples_bodies_and_answer_in_their_shape(http):
    added = post(http, "/api/Conf/CtrlData/AddMulti", [i | V1 for i in sample("4.2.8-add-multi")])
    expected = sample("4.2.8-add-multi-reply")
    body = added.json()
    assert list(body) == list(expected)
    assert [list(i) for i in body["Data"]] == [list(i) for i in expected["Data"]]
    assert [i["ctrl_id"] for i in body["Data"]] == [1, 2]

    records = [
        r | V1 | {"ctrl_id": n} for r, n in zip(sample("4.2.9-update-multi"), (1, 2), strict=True)
    ]
    updated = post(http, "/api/Conf/CtrlData/UpdateMulti", records).json()
    assert [i["result"] for i in updated["Data"]] == [True, True]
    assert list(updated) == list(sample("4.2.9-update-multi-reply"))

    for verb in ("Cancel", "Retry", "Delete"):
        ids = [1, 2] if verb != "Delete" else sample("4.2.10-multi")  # [8, 9]: none of ours
        reply = post(http, f"/api/Conf/CtrlData/{verb}Multi", ids).json()
        assert list(reply) == list(sample("4.2.10-multi-reply"))
        assert [list(i) for i in reply["Data"]] == [["ctrl_id", "target_comm_no", "result",
                                                     "message"]] * 2  # fmt: skip
    assert [i["result"] for i in reply["Data"]] == [False, False]


def test_created_yet_false_as_the_add_multi_sample(http, sim):
    sim.set_faults(sim.faults.settings.model_copy(update={"batch_result_false": Decimal(1)}))
    added = post(http, "/api/Conf/CtrlData/AddMulti", [i | V1 for i in sample("4.2.8-add-multi")])
    assert added.json()["Data"] == [
        {"ctrl_id": n, "target_comm_no": METER, "result": False, "message": ""} for n in (1, 2)
    ]
    assert sorted(sim.platform.records) == [1, 2]


def test_failures_are_the_samples_failures(http):
    assert post(http, "/api/Conf/CtrlData/Delete/1").json() == sample("4.2.3-delete-reply-failed")
    for verb in ("cancel", "retry"):
        reply = post(http, f"/api/Conf/CtrlData/{verb.title()}/1").json()
        assert reply == sample(f"4.2.{6 if verb == 'cancel' else 7}-{verb}-reply-failed")
    post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add") | V1)
    assert post(http, "/api/Conf/CtrlData/Cancel/1").json() == sample("4.2.6-cancel-reply-success")
    assert post(http, "/api/Conf/CtrlData/Retry/1").json() == sample("4.2.7-retry-reply-success")
    assert post(http, "/api/Conf/CtrlData/Delete/1").json() == sample("4.2.3-delete-reply-success")


def test_detail_text_has_the_samples_lines(http, sim):
    post(http, "/api/Conf/CtrlData/Add", sample("4.2.1-add") | V1)
    text = post(http, "/api/Conf/CtrlData/GetDetial/1").json()["Data"]
    expected = sample("4.2.11-get-detial-reply")["Data"]

    def labels(detail: str) -> list[str]:
        return [line.strip().split(":")[0] for line in detail.split("</br>")]

    assert labels(text) == labels(expected)
    assert "设备类型:表计 </br>" in text and "任务状态:0 (等待发送) </br>" in text
    assert text.endswith(" {} </br>")


def test_report_items_are_the_samples_shape_and_a_refused_item_goes_again(sim):
    pushed: list[Any] = []

    def app(request: httpx.Request) -> httpx.Response:
        pushed.append(json.loads(request.content))
        return httpx.Response(200, content=json.dumps(sample("4.2.12-report-reply")))

    sim.connect(httpx.Client(base_url="http://app/", transport=httpx.MockTransport(app)))
    sim.platform.add(sample("4.2.1-add") | V1)
    item = sim.platform.records[1].report(ZONE)
    assert list(item) == list(sample("4.2.12-report")[0])
    assert kinds(item) == kinds(sample("4.2.12-report")[0])
    assert item["ctrl_time"] == "2017-04-17 00:00:00"  # as the sample writes it: a space
    # the reply sample answers result false for ctrl_ids 8 and 9: pushed again
    unit = [Push(n, "report", {**item, "ctrl_id": n}, START, START) for n in (8, 9)]
    assert Pusher._refused_items(unit, sample("4.2.12-report-reply")["Data"]) == unit


def test_readings_are_pushed_with_every_field_of_the_table(sim):
    pushed: list[tuple[str, Any]] = []

    def app(request: httpx.Request) -> httpx.Response:
        pushed.append((request.url.path, json.loads(request.content, parse_float=Decimal)))
        return httpx.Response(200, content=json.dumps(sample("3.1.1-meter-data-add-reply")))

    sim.connect(httpx.Client(base_url="http://app/", transport=httpx.MockTransport(app)))
    sim.advance(datetime(2025, 4, 2, 5, tzinfo=ZONE))
    (path, reading), *_ = pushed
    assert path == "/api/Data/MeterData/Add"
    assert len(reading) == 33 and len(reading["ext_data"]) == 22  # §3.1.1's tables
    assert reading["device_type"] == 1 and reading["data_type"] == 1
    assert sim.summary().pushes_delivered == len(pushed)
