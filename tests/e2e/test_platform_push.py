"""The platform's data interface over HTTP: pushes, re-pushes, bad input, queries (spec §4)."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.api.lanes import LaneApp
from gasbill.api.platform import PlatformContext, install_platform_api

KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
OTHER = {"company_no": "2002", "data_api_key": "0123456789abcdef0123456789abcdef"}
NOW = datetime(2025, 6, 1, 4, tzinfo=UTC)
METER = "12345678901234"

# A reading as the vendor's document shows it: every field of spec §4.1.
SAMPLE = {
    "meter_comm_no": METER,
    "device_type": 1,
    "device_type_name": "物联网表",
    "factory_code": "F01",
    "meter_area_no": "A1",
    "meter_define_no1": "d1",
    "meter_define_no2": "d2",
    "meter_define_no3": "d3",
    "meter_define_no4": "d4",
    "data_type": 1,
    "data_type_name": "冻结数据",
    "acquisition_time": "2025-05-31 00:00:00",
    "receive_time": "2025-05-31T00:05:12",
    "std_sum": 1234.567,
    "work_sum": 1250.001,
    "std_flow": 0.0,
    "work_flow": 0,
    "temperature": 21.5,
    "pressure": 101.325,
    "magatt_times": 0,
    "this_month_sum": 30.2,
    "last_month_sum": 41.0,
    "this_cycle_sum": 220.25,
    "last_cycle_sum": 512.0,
    "remain_money": 88.88,
    "remain_volume": 0,
    "curr_price": 2.61,
    "meter_state": 0,
    "meter_stat_emsg": "正常",
    "rssi": -71,
    "battery_voltage": 3.6,
    "battery_level": 90,
    "ext_data": {"valve_open": True, "calc_type": 0, "total_buy_value": 500.0},
}


@pytest.fixture
def client(engine):
    app = LaneApp()
    settings = PushSettings(
        keys={KEYS["company_no"]: KEYS["data_api_key"], OTHER["company_no"]: OTHER["data_api_key"]},
        max_body_bytes=4096,
    )
    install_platform_api(
        app, PlatformContext(engine, settings, ZoneInfo("Asia/Shanghai"), clock=lambda: NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


def push(client, body, path="/api/Data/MeterData/Add", headers=KEYS):
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body, ensure_ascii=False)
    return client.post(path, content=raw, headers={**headers, "content-type": "application/json"})


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar_one()


def test_a_pushed_reading_is_stored_and_answered_with_its_data_guid(client, engine):
    reply = push(client, SAMPLE)
    assert reply.status_code == 200
    body = reply.json()
    assert body["State"] == "success"
    assert body["Message"] == ""
    assert len(base64.b64decode(body["Data"])) == 16
    assert count(engine, "meter_reading") == 1
    assert count(engine, "billing_inbox") == 1


def test_the_stored_reading_is_served_back_exactly(client):
    guid = push(client, SAMPLE).json()["Data"]
    reply = client.post(f"/api/Data/MeterData/GetRealModel/{METER}", headers=KEYS)
    assert reply.status_code == 200
    data = reply.json()["Data"]
    assert data["data_guid"] == guid
    assert data["company_no"] == "1001"
    assert data["acquisition_time"] == "2025-05-31T00:00:00"
    assert data["receive_time"] == "2025-05-31T00:05:12"
    raw = reply.text
    assert '"std_sum":1234.567' in raw and '"pressure":101.325' in raw
    for name, value in SAMPLE.items():
        if name in ("acquisition_time", "receive_time"):
            continue
        assert data[name] == value, name


def test_a_re_push_is_answered_with_the_first_guid_and_stores_nothing_new(client, engine):
    first = push(client, SAMPLE).json()["Data"]
    again = push(client, SAMPLE)
    assert again.json() == {"Data": first, "State": "success", "Message": ""}
    assert (count(engine, "meter_reading"), count(engine, "billing_inbox")) == (1, 1)
    assert count(engine, "push_conflict") == 0


def test_a_re_push_with_other_values_keeps_the_first_and_records_a_conflict(client, engine):
    first = push(client, SAMPLE).json()["Data"]
    changed = {**SAMPLE, "std_sum": 1300.0, "remain_money": 1.5}
    reply = push(client, changed)
    assert reply.json()["Data"] == first
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT std_sum FROM meter_reading")).scalar_one()
        conflict = conn.execute(sa.text("SELECT first, second FROM push_conflict")).one()
    assert stored == 1_234_567
    assert json.loads(conflict.first) == {"remain_money": 88880, "std_sum": 1234567}
    assert json.loads(conflict.second) == {"remain_money": 1500, "std_sum": 1300000}


def test_ext_data_may_come_as_a_string_holding_json(client):
    body = {**SAMPLE, "ext_data": json.dumps({"valve_open": False})}
    assert push(client, body).status_code == 200
    data = client.post(f"/api/Data/MeterData/GetRealModel/{METER}", headers=KEYS).json()["Data"]
    assert data["ext_data"] == {"valve_open": False}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"company_no": "1001"},
        {**KEYS, "data_api_key": "wrong-key-wrong-key-wrong-key-00"},
        {**KEYS, "company_no": "9999"},
    ],
)
def test_a_wrong_or_missing_key_gets_401_and_stores_nothing(client, engine, headers):
    reply = push(client, SAMPLE, headers=headers)
    assert reply.status_code == 401
    assert reply.json()["State"] == "failed"
    assert "data_api_key" in reply.json()["Message"]
    assert count(engine, "meter_reading") == 0


BAD_BODIES = [
    (b'{"meter_comm_no": ', 400, "malformed JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"\xff\xfe", 400, "not UTF-8"),
    (b"", 400, "empty"),
    ({**SAMPLE, "data_type": "1"}, 422, "data_type"),
    ({**SAMPLE, "std_sum": "12.5"}, 422, "std_sum: must be a JSON number"),
    ({k: v for k, v in SAMPLE.items() if k != "meter_comm_no"}, 422, "meter_comm_no: is required"),
    (
        {k: v for k, v in SAMPLE.items() if k != "acquisition_time"},
        422,
        "acquisition_time: is required",
    ),
    ({**SAMPLE, "std_sum": 1e16}, 422, "beyond decimal(18,3)"),
    ({**SAMPLE, "std_sum": 1.2345}, 422, "more than 3 decimals"),
    (json.dumps(SAMPLE).replace("1234.567", "NaN"), 400, "NaN"),
    (json.dumps(SAMPLE).replace("1234.567", "Infinity"), 400, "Infinity"),
    ({**SAMPLE, "meter_define_no1": "a\x00b"}, 422, "NUL"),
    ({**SAMPLE, "factory_code": "x" * 51}, 422, "factory_code"),
    ({**SAMPLE, "acquisition_time": "2030-01-01 00:00:00"}, 422, "in the future"),
    ({**SAMPLE, "acquisition_time": "yesterday"}, 422, "acquisition_time"),
    ({**SAMPLE, "data_type": 7}, 422, "unknown data_type 7"),
    ({**SAMPLE, "rssi": 2**31}, 422, "rssi"),
    ({**SAMPLE, "ext_data": "[1,"}, 422, "ext_data"),
    ({**SAMPLE, "std_sum": None, "work_sum": None}, 422, "std_sum"),
    ({**SAMPLE, "meter_stat_emsg": "x" * 5000}, 413, "larger than"),
]


@pytest.mark.parametrize(("body", "status", "message"), BAD_BODIES)
def test_bad_input_gets_a_failed_envelope_naming_the_problem_and_stores_nothing(
    client, engine, body, status, message
):
    reply = push(client, body)
    assert reply.status_code == status
    envelope = reply.json()
    assert envelope["State"] == "failed"
    assert envelope["Data"] is None
    assert message in envelope["Message"]
    assert count(engine, "meter_reading") == 0
    assert count(engine, "billing_inbox") == 0


def test_a_body_sent_in_chunks_without_a_length_is_cut_off_at_the_limit(client, engine):
    raw = json.dumps({**SAMPLE, "meter_stat_emsg": "x" * 5000}).encode()
    chunks = (raw[i : i + 1000] for i in range(0, len(raw), 1000))
    reply = client.post(
        "/api/Data/MeterData/Add",
        content=chunks,
        headers={**KEYS, "content-type": "application/json"},
    )
    assert reply.status_code == 413
    assert reply.json()["Message"] == "the body is larger than 4096 bytes"
    assert count(engine, "meter_reading") == 0


def test_real_time_readings_update_the_latest_state_but_are_not_queued_for_billing(client, engine):
    push(client, SAMPLE)
    live = {**SAMPLE, "data_type": 0, "acquisition_time": "2025-05-31 09:30:00", "std_sum": 1235}
    push(client, live)
    older = {**SAMPLE, "data_type": 0, "acquisition_time": "2025-05-30 09:30:00", "std_sum": 1200}
    push(client, older)
    data = client.post(f"/api/Data/MeterData/GetRealModel/{METER}", headers=KEYS).json()["Data"]
    assert (data["data_type"], data["std_sum"]) == (0, 1235)
    assert count(engine, "billing_inbox") == 1


def test_get_real_model_of_an_unknown_meter_is_a_404_envelope(client):
    reply = client.post("/api/Data/MeterData/GetRealModel/99999999999999", headers=KEYS)
    assert reply.status_code == 404
    assert reply.json()["State"] == "failed"
    assert reply.json()["Data"] is None


def readings_of_many_meters(client):
    for i in range(5):
        push(
            client,
            {
                **SAMPLE,
                "meter_comm_no": f"1000000000000{i}",
                "meter_define_no1": f"z{4 - i}",
                "acquisition_time": f"2025-05-{20 + i} 00:00:00",
            },
        )


def test_get_real_list_pages_filters_and_orders(client):
    readings_of_many_meters(client)
    reply = client.post(
        "/api/Data/MeterData/GetRealList2?startrow=1&rowcount=2",
        json={"orderby": "meter_define_no1", "sequence": "asc"},
        headers=KEYS,
    )
    body = reply.json()
    assert (body["Totalcount"], body["Startrow"], body["Rowcount"]) == (5, 1, 2)
    assert [r["meter_define_no1"] for r in body["Data"]] == ["z1", "z2"]
    subset = client.post(
        "/api/Data/MeterData/GetRealList2",
        json={
            "meter_comm_nos": ["10000000000001", "10000000000003"],
            "acq_start_time": "2025-05-22",
        },
        headers=KEYS,
    ).json()
    assert [r["meter_comm_no"] for r in subset["Data"]] == ["10000000000003"]


@pytest.mark.parametrize(
    ("query", "body", "message"),
    [
        ("", {"orderby": "remain_money"}, "orderby: must be one of"),
        ("", {"sequence": "up"}, "sequence: must be asc or desc"),
        ("?rowcount=1001", {}, "rowcount: at most 1000"),
        ("?startrow=-1", {}, "startrow"),
        ("?rowcount=abc", {}, "rowcount"),
        ("", {"meter_comm_nos": "x"}, "meter_comm_nos"),
        ("", {"unknown": 1}, "unknown: is not a field"),
    ],
)
def test_query_rules_are_enforced(client, query, body, message):
    reply = client.post(f"/api/Data/MeterData/GetRealList2{query}", json=body, headers=KEYS)
    assert reply.status_code == 422
    assert message in reply.json()["Message"]


def test_history_is_windowed_inside_one_month(client):
    for day in (1, 15, 30):
        push(client, {**SAMPLE, "acquisition_time": f"2025-04-{day:02d} 00:00:00"})
    push(client, {**SAMPLE, "acquisition_time": "2025-05-01 00:00:00"})

    def history(body):
        return client.post("/api/Data/MeterData/GetHistoryList2", json=body, headers=KEYS).json()

    april = history({"meter_comm_no": METER, "data_type": 1, "year": 2025, "month": 4})
    assert [r["acquisition_time"][:10] for r in april["Data"]] == [
        "2025-04-01",
        "2025-04-15",
        "2025-04-30",
    ]
    window = history({"year": 2025, "month": 4, "start_day": 2, "end_day": 29})
    assert window["Totalcount"] == 1
    assert history({})["Totalcount"] == 4
    # calendar rules OpenAPI cannot state are read as a filter: past the month's end
    # means its end, a window that ends before it starts holds nothing
    assert history({"year": 2025, "month": 4, "start_day": 30, "end_day": 31})["Totalcount"] == 1
    assert history({"year": 2025, "month": 2, "start_day": 30})["Totalcount"] == 0
    assert history({"year": 2025, "month": 4, "start_day": 20, "end_day": 10})["Totalcount"] == 0
    # a part without the larger units above it is refused, as OpenAPI says
    for body, message in (
        ({"month": 4}, "year: needed"),
        ({"year": 2025, "start_day": 2}, "month: needed"),
    ):
        bad = client.post("/api/Data/MeterData/GetHistoryList2", json=body, headers=KEYS)
        assert bad.status_code == 422 and message in bad.json()["Message"], bad.text
    # null is as good as absent
    assert history({"year": None, "month": None, "start_day": None})["Totalcount"] == 4


def test_each_company_sees_only_its_own_data(client):
    push(client, SAMPLE)
    push(client, {**SAMPLE, "std_sum": 5}, headers=OTHER)
    mine = client.post("/api/Data/MeterData/GetHistoryList2", json={}, headers=KEYS).json()
    theirs = client.post("/api/Data/MeterData/GetHistoryList2", json={}, headers=OTHER).json()
    assert [r["std_sum"] for r in mine["Data"]] == [1234.567]
    assert [r["std_sum"] for r in theirs["Data"]] == [5]


ALARM = {
    "device_comm_no": METER,
    "device_type": "1",
    "alarm_time": "2025-05-31 08:00:00",
    "receive_time": "2025-05-31 08:00:05",
    "alarm_code": 17,
    "alarm_content": "磁攻击",
    "alarm_data": '{"count": 3}',
}
EVENT = {
    "device_comm_no": METER,
    "device_type": 1,
    "event_time": "2025-05-31 09:00:00",
    "event_code": 5,
    "event_content": "阀门关闭",
    "event_data": {"valve": "off"},
}


def test_alarms_and_events_are_stored_once_and_listed(client, engine):
    first = push(client, ALARM, path="/api/Data/DeviceAlarm/Add").json()
    again = push(client, ALARM, path="/api/Data/DeviceAlarm/Add").json()
    assert first["State"] == "success" and isinstance(first["Data"], int)
    assert again["Data"] == first["Data"]
    changed = push(client, {**ALARM, "alarm_content": "x"}, path="/api/Data/DeviceAlarm/Add")
    assert changed.json()["Data"] == first["Data"]
    assert count(engine, "push_conflict") == 1
    event = push(client, EVENT, path="/api/Data/DeviceEvent/Add").json()
    assert event["State"] == "success"
    alarms = client.post(
        "/api/Data/DeviceAlarm/GetList2?startrow=0&rowcount=10",
        json={"device_type": 1, "year": 2025, "month": 5},
        headers=KEYS,
    ).json()
    assert alarms["Totalcount"] == 1
    row = alarms["Data"][0]
    assert row["alarm_id"] == first["Data"] and row["company_no"] == "1001"
    assert row["alarm_data"] == {"count": 3} and row["alarm_time"] == "2025-05-31T08:00:00"
    events = client.post("/api/Data/DeviceEvent/GetList2", json={}, headers=KEYS).json()
    assert [e["event_code"] for e in events["Data"]] == [5]
    missing = push(client, {**ALARM, "alarm_code": None}, path="/api/Data/DeviceAlarm/Add")
    assert missing.status_code == 422 and "alarm_code" in missing.json()["Message"]


def test_command_reports_are_answered_item_by_item(client, engine):
    body = [
        {
            "ctrl_id": 8,
            "meter_comm_no": METER,
            "ctrl_time": "2018-08-11 10:37:56",
            "ctrl_timeout": "2018-08-15 12:37:56",
            "ctrl_type": "iotmeterv1.common.setvalveon",
            "ctrl_state": 3,
            "ctrl_state_msg": "任务成功",
            "ctrl_feedback_msg": "",
            "return_data": "{}",
        },
        {"ctrl_id": "nine", "meter_comm_no": METER, "ctrl_state": 3},
        {"ctrl_id": 10, "meter_comm_no": METER, "ctrl_state": 42},
    ]
    reply = push(client, body, path="/api/Conf/CtrlData/Report")
    assert reply.status_code == 200
    data = reply.json()["Data"]
    assert [(d["ctrl_id"], d["result"]) for d in data] == [(8, True), (0, False), (10, False)]
    assert "ctrl_id" in data[1]["message"]
    assert "unknown state 42" in data[2]["message"]
    assert count(engine, "command_report") == 1  # kept until a command with ctrl_id 8 is known
    assert push(client, body[:1], path="/api/Conf/CtrlData/Report", headers={}).status_code == 401
    assert push(client, {"ctrl_id": 1}, path="/api/Conf/CtrlData/Report").status_code == 400


def test_concurrent_pushes_share_transactions_and_each_gets_its_own_answer(engine):
    """Group commit over HTTP: 40 pushes at once (two of them the same reading, one bad)."""
    app = LaneApp()
    context = PlatformContext(engine, PushSettings(), ZoneInfo("Asia/Shanghai"), clock=lambda: NOW)
    install_platform_api(app, context)
    bodies = [
        {**SAMPLE, "meter_comm_no": f"{i:014d}", "std_sum": 10 + i, "ext_data": None}
        for i in range(38)
    ]
    bodies.append(bodies[5])  # the same reading again, in flight at the same time
    bodies.append({**SAMPLE, "acquisition_time": "2125-01-01 00:00:00"})  # absurd future

    async def push_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gasbill") as http:
            return await asyncio.gather(
                *(
                    http.post(
                        "/api/Data/MeterData/Add",
                        content=json.dumps(body),
                        headers={**KEYS, "content-type": "application/json"},
                    )
                    for body in bodies
                )
            )

    replies = asyncio.run(push_all())
    answers = [r.json() for r in replies]
    assert [r.status_code for r in replies] == [200] * 39 + [422]
    assert all(a["State"] == "success" for a in answers[:39])
    assert answers[39]["State"] == "failed"
    assert answers[39]["Message"].startswith("acquisition_time:")
    assert answers[38]["Data"] == answers[5]["Data"]  # the re-push got the first id
    assert len({a["Data"] for a in answers[:38]}) == 38
    assert (count(engine, "meter_reading"), count(engine, "billing_inbox")) == (38, 38)
    assert context.readings.items == 39
    assert context.readings.batches < context.readings.items  # shared transactions


def test_api_worker_processes_build_the_app_from_the_environment(db_url, monkeypatch, tmp_path):
    """`uvicorn --factory gasbill.api.asgi:api_from_environment`: pushes take the lane."""
    from gasbill.api.asgi import api_from_environment

    monkeypatch.chdir(tmp_path)  # no ./config.toml: defaults and the variables below
    monkeypatch.delenv("GASBILL_CONFIG", raising=False)
    monkeypatch.setenv("GASBILL_DATABASE__URL", db_url)
    monkeypatch.setenv("GASBILL_APP__ENVIRONMENT", "demo")
    monkeypatch.setenv("GASBILL_TARIFFS__DIR", str(Path(__file__).parents[2] / "tariffs"))
    app = api_from_environment()
    assert isinstance(app, LaneApp)
    assert "/api/Data/MeterData/Add" in app.lanes
    with TestClient(app) as http:
        reply = push(http, {**SAMPLE, "acquisition_time": "2020-01-01 00:00:00"})
    assert reply.status_code == 200
    assert reply.json()["State"] == "success"


def test_a_push_the_database_cannot_take_gets_a_500_envelope_to_retry(tmp_path, caplog):
    """The platform re-pushes what is not answered `success`; nothing is half stored."""
    broken = make_engine(f"sqlite:///{tmp_path / 'no-tables.db'}")  # never migrated
    app = LaneApp()
    install_platform_api(
        app, PlatformContext(broken, PushSettings(), ZoneInfo("Asia/Shanghai"), clock=lambda: NOW)
    )
    with TestClient(app) as http:
        reply = push(http, SAMPLE)
    assert reply.status_code == 500
    assert reply.json() == {
        "Data": None,
        "State": "failed",
        "Message": "the server failed to handle this request; retry later",
    }
    assert "platform endpoint failed" in caplog.text
    broken.dispose()
