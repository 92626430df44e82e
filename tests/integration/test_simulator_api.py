"""The simulated platform driven by our real PlatformClient, DataClient and push endpoints."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from gasbill.adapters.platform.client import PlatformClient, PlatformRefused, PlatformRetryable
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.data_client import DataClient
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.adapters.platform.wire import CtrlDataFilter
from gasbill.api.lanes import LaneApp
from gasbill.api.platform import PlatformContext, install_platform_api
from gasbill.domain.commands import (
    CtrlState,
    GetChargeState,
    LadderPrice,
    OpenAccount,
    RemoteCharge,
    RemoteChargeReturn,
    RemoteChargeState,
    SetValveOff,
)
from gasbill.domain.money import Money, Price, Volume
from iotsim.faults import FaultSettings
from iotsim.fleet import Simulator
from iotsim.pusher import PushTarget
from iotsim.settings import VENDOR_KEY, SimulatorSettings
from iotsim.transport import AsgiTransport, SimulatorTransport

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 4, 1, 0, 0, tzinfo=ZONE)
NEW = "88600000000001"  # not opened; wakes at 03:00
OPEN = "88600000000002"  # opened with 100 yuan; wakes at 04:00
CODEC = Codec(ZONE)
LADDER = LadderPrice(
    tuple(Price(p) for p in ("3.000", "3.600", "4.500", "4.500", "4.500")),
    tuple(Volume(v) for v in (300, 500, 500, 500)),
    date(2025, 1, 1),
    12,
)


class Receiver:
    """The application's push endpoints, recorded; `down` makes them unreachable."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, object]] = []
        self.down = False
        self.refuse_report_once: set[int] = set()

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("the application is down", request=request)
        body = json.loads(request.content, parse_float=Decimal)
        path = request.url.path.rsplit("/api/", 1)[1]
        assert request.headers["data_api_key"] == VENDOR_KEY
        self.pushes.append((path, body))
        data: object = 1
        if path == "Conf/CtrlData/Report":
            data = []
            for item in body:
                refused = item["ctrl_id"] in self.refuse_report_once
                self.refuse_report_once.discard(item["ctrl_id"])
                data.append(
                    {
                        "ctrl_id": item["ctrl_id"],
                        "meter_comm_no": item["meter_comm_no"],
                        "result": not refused,
                        "message": "later" if refused else "",
                    }
                )
        return httpx.Response(200, json={"State": "success", "Message": "", "Data": data})

    def of(self, path: str) -> list:
        return [body for p, body in self.pushes if p == path]

    def reports(self, ctrl_id: int) -> list[int]:
        return [
            item["ctrl_state"]
            for batch in self.of("Conf/CtrlData/Report")
            for item in batch
            if item["ctrl_id"] == ctrl_id
        ]


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def sim(receiver: Receiver) -> Simulator:
    settings = SimulatorSettings(meters=0, start=START, seed=11, magnetic_attack_per_day=0)
    push = httpx.Client(base_url="http://app/", transport=httpx.MockTransport(receiver.handle))
    simulator = Simulator(settings, push_client=push)
    simulator.add_meter(NEW, wake=time(3))
    simulator.add_meter(OPEN, opened=True, balance=Decimal(100), wake=time(4))
    return simulator


def make_client(sim: Simulator, *, transport: httpx.BaseTransport | None = None, **settings):
    return PlatformClient(
        PlatformSettings(base_url="http://platform/", password="123456", **settings),
        zone=ZONE,
        transport=transport or SimulatorTransport(sim),
        clock=sim.clock,
    )


@pytest.fixture
def client(sim: Simulator):
    with make_client(sim) as c:
        yield c


def add(client: PlatformClient, sim: Simulator, command, target: str, define: str, hours: int = 72):
    body = CODEC.new_ctrl_data(
        command,
        ctrl_define_no=define,
        target_comm_no=target,
        ctrl_time=sim.now,
        ctrl_timeout=sim.now + timedelta(hours=hours),
    )
    return client.add(body)


def open_new(client: PlatformClient, sim: Simulator, define: str = "open-1") -> int:
    command = OpenAccount.of(Money(50), Money(50), LADDER)
    return add(client, sim, command, NEW, define)


def until(sim: Simulator, day: int, hour: int) -> None:
    sim.advance(datetime(2025, 4, day, hour, tzinfo=ZONE))


# -- login and token --------------------------------------------------------------------------


class Counting(SimulatorTransport):
    def __init__(self, sim: Simulator) -> None:
        super().__init__(sim)
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return super().handle_request(request)


def test_an_expired_token_is_refused_and_the_client_logs_in_again_once(sim):
    transport = Counting(sim)
    stuck = PlatformClient(
        PlatformSettings(base_url="http://platform/", password="123456"),
        zone=ZONE,
        transport=transport,
        clock=lambda: START,  # a client that believes its token is still good
    )
    reply = stuck.login()
    assert reply.expires_at(ZONE) == START + timedelta(hours=2)
    stuck.get_list()
    until(sim, 1, 3)
    assert stuck.get_list().totalcount == 0
    logins = [p for p in transport.paths if p.endswith("/Login")]
    assert len(logins) == 2 and len(transport.paths) == 5  # login, list, list (401), login, list


def test_the_token_is_checked_and_the_password_is_an_md5(sim):
    raw = httpx.Client(base_url="http://platform/", transport=SimulatorTransport(sim))
    refused = raw.post("/api/Conf/CtrlData/GetModel/1", headers={"token": "forged"})
    assert refused.status_code == 401
    assert refused.json()["State"] == "failed" and "token" in refused.json()["Message"]
    clear = raw.post("/api/Conf/Account/Login", params={"loginName": "admin", "pwd": "123456"})
    assert clear.json()["State"] == "failed"
    with make_client(sim, password_md5_upper=True) as upper:
        assert upper.login().token
    with make_client(sim, login_name="root") as wrong, pytest.raises(PlatformRefused):
        wrong.login()


# -- the command state machine ----------------------------------------------------------------


def test_a_command_waits_for_the_wake_up_then_succeeds_and_every_state_is_reported(
    sim, client, receiver
):
    ctrl_id = open_new(client, sim)
    record = client.get_model(ctrl_id)
    assert record is not None and record.state is CtrlState.WAITING
    assert record.ctrl_data.startswith('{"charge_value":50')
    until(sim, 1, 2)
    assert client.get_model(ctrl_id).state is CtrlState.WAITING
    until(sim, 1, 4)
    record = client.get_model(ctrl_id)
    assert record.state is CtrlState.SUCCESS and record.ctrl_state_msg == "任务成功"
    assert CODEC.result_of(record).applied
    assert receiver.reports(ctrl_id) == [1, 2, 3]
    status = sim.meter(NEW)
    assert status.opened and status.remote_charge_times == 1 and status.remain <= 50
    assert sim.platform.records[ctrl_id].applied == 1


def test_timeout_before_the_wake_up(sim, client, receiver):
    ctrl_id = add(client, sim, SetValveOff(), NEW, "off-1", hours=2)
    until(sim, 1, 5)
    record = client.get_model(ctrl_id)
    assert record.state is CtrlState.TIMED_OUT
    assert receiver.reports(ctrl_id) == [6]
    assert sim.meter(NEW).valve_open and sim.platform.records[ctrl_id].applied == 0


def test_cancel_only_while_waiting_and_retry_sends_a_final_command_again(sim, client, receiver):
    first = add(client, sim, SetValveOff(), OPEN, "off-1")
    assert client.cancel(first) == first
    assert client.get_model(first).state is CtrlState.CANCELLED
    with pytest.raises(PlatformRefused, match="不能取消"):
        client.cancel(first)
    assert client.retry(first) == first
    assert client.get_model(first).state is CtrlState.WAITING
    with pytest.raises(PlatformRefused, match="不能重试"):
        client.retry(first)
    until(sim, 1, 5)
    assert client.get_model(first).state is CtrlState.SUCCESS
    assert not sim.meter(OPEN).valve_open
    with pytest.raises(PlatformRefused):
        client.cancel(first)
    assert receiver.reports(first) == [5, 0, 1, 2, 3]


def test_get_list_filters_and_pages(sim, client):
    ids = [add(client, sim, GetChargeState(), OPEN, f"q-{n}") for n in range(5)]
    other = add(client, sim, SetValveOff(), NEW, "q-x")
    found = client.find_by_define_no("q-3")
    assert [r.ctrl_id for r in found] == [ids[3]]
    page = client.get_list(CtrlDataFilter(target_comm_no=OPEN), startrow=1, rowcount=2)
    assert (page.totalcount, page.startrow, page.rowcount) == (5, 1, 2)
    assert [r.ctrl_id for r in page.items] == ids[1:3]
    by_type = client.get_list(CtrlDataFilter(ctrl_type="iotmeterv1.common.setvalveoff"))
    assert [r.ctrl_id for r in by_type.items] == [other]
    until(sim, 1, 5)
    done = client.get_list(CtrlDataFilter(ctrl_state=3, processor_name="iotmeterv1"))
    assert [r.ctrl_id for r in done.items] == [*ids, other]
    day = client.get_list(CtrlDataFilter(ctrl_time_from="2025-04-01", ctrl_time_to="2025-04-01"))
    assert day.totalcount == 6
    assert client.get_list(CtrlDataFilter(ctrl_time_from="2025-04-02")).totalcount == 0


def test_batches_match_their_requests_by_position(sim, client):
    good = CODEC.new_ctrl_data(
        GetChargeState(),
        ctrl_define_no="b-1",
        target_comm_no=OPEN,
        ctrl_time=sim.now,
        ctrl_timeout=sim.now + timedelta(days=3),
    )
    unknown = good.model_copy(update={"target_comm_no": "99999999999999", "ctrl_define_no": "b-2"})
    added = client.add_multi([good, unknown])
    assert added[0].exists and added[0].ok
    assert not added[1].exists and added[1].matched and "设备不存在" in added[1].message
    record = client.get_model(added[0].ctrl_id)
    changed = record.model_copy(update={"ctrl_define_no": "b-1b", "ctrl_state": 3})
    (updated,) = client.update_multi([changed])
    assert updated.ok
    again = client.get_model(added[0].ctrl_id)
    assert again.ctrl_define_no == "b-1b" and again.state is CtrlState.WAITING
    cancelled, missing = client.cancel_multi([added[0].ctrl_id, 999])
    assert cancelled.ok and not missing.ok and not missing.exists
    (retried,) = client.retry_multi([added[0].ctrl_id])
    assert retried.ok
    (deleted,) = client.delete_multi([added[0].ctrl_id])
    assert deleted.ok
    with pytest.raises(PlatformRefused):
        client.get_model(added[0].ctrl_id)
    with pytest.raises(PlatformRefused, match="找不到要删除的数据"):
        client.delete(added[0].ctrl_id)


def test_update_only_while_waiting_and_detail_text(sim, client):
    ctrl_id = add(client, sim, GetChargeState(), OPEN, "u-1")
    until(sim, 1, 5)
    record = client.get_model(ctrl_id)
    with pytest.raises(PlatformRefused, match="不能修改"):
        client.update(record)
    detail = client.get_detail(ctrl_id)
    assert detail.startswith(f"事物流水号:{ctrl_id} </br>处理程序标识:iotmeterv1 </br>")
    assert "任务状态:3 (任务成功)" in detail and '"remote_charge_times":0' in detail


def test_a_bad_command_is_refused_at_add(client, sim):
    bad = CODEC.new_ctrl_data(
        GetChargeState(),
        ctrl_define_no="x",
        target_comm_no=OPEN,
        ctrl_time=sim.now,
        ctrl_timeout=sim.now + timedelta(days=1),
    )
    with pytest.raises(PlatformRefused, match="ctrl_data"):
        client.add(bad.model_copy(update={"ctrl_type": "iotmeterv1.prepay.remotecharge"}))
    with pytest.raises(PlatformRefused, match="processor_name"):
        client.add(bad.model_copy(update={"processor_name": "iotmeter"}))


# -- faults -------------------------------------------------------------------------------------


def test_a_lost_reply_to_add_leaves_the_command_on_the_platform(sim, client):
    client.login()
    sim.set_faults(FaultSettings(lost_reply=Decimal(1)))
    with pytest.raises(PlatformRetryable, match="transport error"):
        add(client, sim, RemoteCharge(Money(10), Money(10), 1), OPEN, "top-1")
    sim.set_faults(FaultSettings())
    (found,) = client.find_by_define_no("top-1")
    assert found.state is CtrlState.WAITING


def test_slow_replies_time_out_or_arrive(sim):
    with make_client(sim, read_timeout_seconds=Decimal(1)) as client:
        client.login()
        sim.set_faults(FaultSettings(slow_reply=Decimal(1), slow_reply_ms=5_000))
        with pytest.raises(PlatformRetryable, match="timed out"):
            add(client, sim, GetChargeState(), OPEN, "slow-1")
        sim.set_faults(FaultSettings(slow_reply=Decimal(1), slow_reply_ms=10))
        add(client, sim, GetChargeState(), OPEN, "slow-2")
    assert [r.ctrl_define_no for r in sim.platform.records.values()] == ["slow-1", "slow-2"]


def test_applied_on_the_meter_but_reported_timed_out(sim, client, receiver):
    sim.set_faults(FaultSettings(applied_timeout=Decimal(1)))
    ctrl_id = add(client, sim, RemoteCharge(Money(30), Money(30), 1), OPEN, "top-1", hours=30)
    until(sim, 1, 5)
    assert client.get_model(ctrl_id).state is CtrlState.ACKNOWLEDGED
    until(sim, 2, 7)
    assert client.get_model(ctrl_id).state is CtrlState.TIMED_OUT
    assert receiver.reports(ctrl_id) == [1, 2, 6]
    sim.set_faults(FaultSettings())
    probe = add(client, sim, GetChargeState(), OPEN, "probe-1")
    until(sim, 3, 5)
    state = CODEC.result_of(client.get_model(probe))
    assert isinstance(state, RemoteChargeState) and state.remote_charge_times == 1
    assert sim.meter(OPEN).remote_total_value == 30


@pytest.mark.parametrize(
    ("fault", "states"),
    [("cmd_failed", [1, 2, 4]), ("cmd_send_failed", [7]), ("cmd_error", [1, 99])],
)
def test_commands_that_fail_are_not_applied(sim, client, receiver, fault, states):
    sim.set_faults(FaultSettings(**{fault: Decimal(1)}))
    ctrl_id = add(client, sim, RemoteCharge(Money(30), Money(30), 1), OPEN, "top-1")
    until(sim, 1, 5)
    assert receiver.reports(ctrl_id) == states
    assert sim.meter(OPEN).remote_charge_times == 0 and sim.platform.records[ctrl_id].applied == 0


def test_the_meter_refuses_a_replayed_top_up(sim, client):
    first = add(client, sim, RemoteCharge(Money(30), Money(30), 1), OPEN, "top-1")
    replay = add(client, sim, RemoteCharge(Money(30), Money(30), 1), OPEN, "top-1-again")
    until(sim, 1, 5)
    results = [CODEC.result_of(client.get_model(i)) for i in (first, replay)]
    assert all(isinstance(r, RemoteChargeReturn) for r in results)
    assert results[0].applied and results[1].refused
    assert sim.meter(OPEN).remote_charge_times == 1


# -- pushes -------------------------------------------------------------------------------------


def test_readings_alarms_and_events_are_pushed(sim, receiver):
    until(sim, 3, 5)
    readings = receiver.of("Data/MeterData/Add")
    assert [(r["meter_comm_no"], r["acquisition_time"]) for r in readings] == [
        (NEW, "2025-04-02T00:00:00"), (OPEN, "2025-04-02T00:00:00"),
        (NEW, "2025-04-03T00:00:00"), (OPEN, "2025-04-03T00:00:00"),
    ]  # fmt: skip
    assert readings[0]["receive_time"] == "2025-04-02T03:00:00"
    assert sim.summary().pushes_delivered == len(receiver.pushes)


def test_pushes_are_kept_while_the_application_is_down_then_dropped_after_7_days(sim, receiver):
    receiver.down = True
    until(sim, 3, 5)
    assert receiver.pushes == [] and sim.summary().pushes_pending == 4
    receiver.down = False
    until(sim, 3, 6)
    assert len(receiver.of("Data/MeterData/Add")) == 4
    receiver.down = True
    until(sim, 13, 5)
    receiver.down = False
    until(sim, 13, 6)
    again = [r["acquisition_time"][:10] for r in receiver.of("Data/MeterData/Add")[4:]]
    assert min(again) == "2025-04-07"  # what waited more than 7 days is gone
    assert sim.summary().pushes_dropped == 6  # the freezes of April 4, 5 and 6


def pushed_readings(concurrency: int) -> tuple[list[tuple[str, str]], Simulator]:
    """The readings a fleet of 30 pushes by 3 April noon, the application down on the 2nd."""
    receiver = Receiver()
    settings = SimulatorSettings(
        meters=30, start=START, seed=11, magnetic_attack_per_day=0,
        push=PushTarget(concurrency=concurrency),
    )  # fmt: skip
    push = httpx.Client(base_url="http://app/", transport=httpx.MockTransport(receiver.handle))
    sim = Simulator(settings, push_client=push)
    receiver.down = True
    until(sim, 2, 12)
    assert receiver.pushes == [] and sim.summary().pushes_pending > 0
    receiver.down = False
    until(sim, 3, 12)
    assert sim.summary().pushes_delivered == len(receiver.pushes)
    readings = receiver.of("Data/MeterData/Add")
    return [(r["meter_comm_no"], r["acquisition_time"]) for r in readings], sim


def test_pushes_in_flight_at_once_are_each_delivered_once_and_kept_while_down():
    one_by_one, _ = pushed_readings(1)
    at_once, sim = pushed_readings(8)
    assert len(at_once) == len(set(at_once)) > 30
    assert sorted(at_once) == sorted(one_by_one)
    assert sim.summary().pushes_pending == 0


def test_duplicated_and_reordered_pushes(receiver):
    settings = SimulatorSettings(
        meters=2,
        start=START,
        seed=11,
        faults=FaultSettings(push_duplicate=Decimal(1), push_reorder=Decimal("0.5")),
        push=PushTarget(reorder_hold_minutes=36 * 60),
    )
    push = httpx.Client(base_url="http://app/", transport=httpx.MockTransport(receiver.handle))
    sim = Simulator(settings, push_client=push)
    until(sim, 9, 12)
    readings = [
        (r["meter_comm_no"], r["acquisition_time"]) for r in receiver.of("Data/MeterData/Add")
    ]
    settled = [r for r in readings if r[1] < "2025-04-08"]  # held at most 36 h: all in
    assert Counter(settled) == dict.fromkeys(set(settled), 2) and len(set(settled)) == 12
    firsts = list(dict.fromkeys(readings))
    assert firsts != sorted(firsts, key=lambda r: (r[1], r[0]))  # some overtook others


def test_a_report_item_refused_is_pushed_again(sim, client, receiver):
    ctrl_id = add(client, sim, GetChargeState(), OPEN, "probe")
    receiver.refuse_report_once.add(ctrl_id)
    until(sim, 1, 5)
    assert receiver.reports(ctrl_id) == [1, 2, 3]  # "sent" was refused
    until(sim, 1, 6)
    assert receiver.reports(ctrl_id) == [1, 2, 3, 1]  # pushed again, after the newer ones


@pytest.mark.db
def test_pushes_land_in_our_own_platform_api(engine, sim):
    app = LaneApp()
    install_platform_api(app, PlatformContext(engine, PushSettings(), ZONE, clock=sim.clock))
    ours = httpx.Client(base_url="http://gasbill/", transport=AsgiTransport(app))
    sim.connect(ours)
    sim.set_faults(FaultSettings(push_duplicate=Decimal(1)))
    sim.add_meter("88600000000003", opened=True, balance=Decimal("0.2"), wake=time(1))
    until(sim, 3, 2)
    summary = sim.summary()
    assert summary.pushes_pending <= 1 and summary.push_failures == 0
    with engine.connect() as conn:
        readings = conn.execute(sa.text("select count(*) from meter_reading")).scalar_one()
        events = conn.execute(sa.text("select count(*) from device_event")).scalar_one()
    assert readings == 4 and events >= 1  # two freezes of the new meter, one of each other


# -- query mode -------------------------------------------------------------------------------


def test_query_mode_serves_the_fleets_data(sim):
    sim.connect(None)
    sim.add_meter("88600000000004", opened=True, balance=Decimal("0.3"), wake=time(2))
    until(sim, 4, 5)
    http = httpx.Client(base_url="http://platform/", transport=SimulatorTransport(sim))
    data = DataClient(http, "1001", VENDOR_KEY)
    history = data.page("reading", {"meter_comm_no": OPEN, "year": 2025, "month": 4},
                        startrow=0, rowcount=2)  # fmt: skip
    assert history.total == 3 and [r["acquisition_time"] for r in history.rows] == [
        "2025-04-02T00:00:00", "2025-04-03T00:00:00"
    ]  # fmt: skip
    assert history.rows[0]["data_guid"] and history.rows[0]["company_no"] == "1001"
    events = data.page("event", {"device_comm_no": "88600000000004"}, startrow=0, rowcount=10)
    assert events.total >= 1 and events.rows[0]["device_type"] == "1"
    keys = {"company_no": "1001", "data_api_key": VENDOR_KEY}
    latest = http.post(f"/api/Data/MeterData/GetRealModel/{OPEN}", headers=keys).json()
    assert latest["Data"]["acquisition_time"] == "2025-04-04T00:00:00"
    listed = http.post(
        "/api/Data/MeterData/GetRealList2?rowcount=2",
        headers=keys,
        json={"orderby": "meter_comm_no", "sequence": "desc"},
    ).json()
    assert listed["Totalcount"] == 3 and listed["Data"][0]["meter_comm_no"] == "88600000000004"
    wrong = http.post("/api/Data/DeviceAlarm/GetList2", headers={**keys, "data_api_key": "x" * 32})
    assert wrong.status_code == 401 and wrong.json()["State"] == "failed"


def test_a_command_created_yet_answered_false_is_taken_as_existing(sim, client):
    sim.set_faults(FaultSettings(batch_result_false=Decimal(1)))
    body = CODEC.new_ctrl_data(
        GetChargeState(),
        ctrl_define_no="f-1",
        target_comm_no=OPEN,
        ctrl_time=sim.now,
        ctrl_timeout=sim.now + timedelta(days=1),
    )
    (outcome,) = client.add_multi([body])
    assert outcome.exists and not outcome.ok and outcome.ctrl_id == 1  # ctrl_id > 0 decides
