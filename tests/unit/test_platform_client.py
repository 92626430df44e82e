"""The remote-control client against respx: login, token, errors, every endpoint."""

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import respx

from gasbill.adapters.platform.client import (
    PlatformClient,
    PlatformRefused,
    PlatformRetryable,
    password_md5,
)
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.adapters.platform.wire import CtrlDataFilter, CtrlDataRecord, NewCtrlData

ZONE = ZoneInfo("Asia/Shanghai")
BASE = "http://platform.test/"
LOGIN = "/api/Conf/Account/Login"
CTRL = "/api/Conf/CtrlData/"
EXPIRY = datetime(2017, 5, 17, 3, 17, 31, tzinfo=UTC)  # 11:17:31+08:00


def ok(data, **extra):
    return httpx.Response(200, json={"State": "success", "Message": "", "Data": data, **extra})


def failed(message, status=200, data=0):
    return httpx.Response(status, json={"State": "failed", "Message": message, "Data": data})


def login_reply(token="tok-1", expiration="2017-05-17T11:17:31.6895023+08:00"):
    return ok(
        {
            "token": token,
            "expiration": expiration,
            "admin_id": 1,
            "company_no": "1001",
            "admin_name": "admin",
            "admin_remark": "",
            "admin_ext_data": None,
        }
    )


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def router():
    return respx.Router(base_url=BASE, assert_all_called=False)


@pytest.fixture
def clock():
    return Clock(EXPIRY - timedelta(hours=2))


def make_client(router, clock, **overrides):
    settings = PlatformSettings(base_url=BASE, login_name="admin", password="123456", **overrides)
    return PlatformClient(
        settings, zone=ZONE, transport=httpx.MockTransport(router.handler), clock=clock
    )


@pytest.fixture
def client(router, clock):
    with make_client(router, clock) as c:
        yield c


def command(target="1234567890", define="cmd-1"):
    return NewCtrlData(
        ctrl_define_no=define,
        target_comm_no=target,
        ctrl_time="2017-04-17T10:12:10",
        ctrl_timeout="2017-04-20T10:12:10",
        ctrl_type="iotmeterv1.prepay.remotecharge",
        ctrl_data='{"charge_value":0.1,"total_value":123456789012345.678,"charge_times":3}',
    )


# -- login and token -----------------------------------------------------------------


def test_login_sends_the_md5_of_the_password(router, client):
    route = router.post(LOGIN).mock(return_value=login_reply())
    reply = client.login()
    assert reply.token == "tok-1"
    params = route.calls.last.request.url.params
    assert params["loginName"] == "admin"
    assert params["pwd"] == "e10adc3949ba59abbe56e057f20f883e"
    assert "123456" not in str(route.calls.last.request.url)


def test_login_md5_upper_case_by_setting(router, clock):
    route = router.post(LOGIN).mock(return_value=login_reply())
    with make_client(router, clock, password_md5_upper=True) as c:
        c.login()
    assert route.calls.last.request.url.params["pwd"] == "E10ADC3949BA59ABBE56E057F20F883E"
    assert password_md5("123456", upper=True) == "E10ADC3949BA59ABBE56E057F20F883E"
    assert password_md5("密码") == hashlib.md5("密码".encode()).hexdigest()  # UTF-8 bytes


def test_login_refused_once_without_loop(router, client):
    route = router.post(LOGIN).mock(return_value=failed("用户名或密码错误", data=None))
    with pytest.raises(PlatformRefused, match="用户名或密码错误") as refused:
        client.get_detail(1)
    assert route.call_count == 1
    assert refused.value.login  # our credentials refused, as the service tells it apart


def test_token_reused_across_calls(router, client):
    login = router.post(LOGIN).mock(return_value=login_reply())
    detail = router.post(CTRL + "GetDetial/7").mock(return_value=ok("事物流水号:7 </br>"))
    assert client.get_detail(7) == "事物流水号:7 </br>"
    client.get_detail(7)
    assert login.call_count == 1
    assert [c.request.headers["token"] for c in detail.calls] == ["tok-1", "tok-1"]


def test_token_renewed_shortly_before_expiry(router, client, clock):
    login = router.post(LOGIN).mock(side_effect=[login_reply("tok-1"), login_reply("tok-2")])
    cancel = router.post(CTRL + "Cancel/1").mock(return_value=ok(1))
    client.cancel(1)
    clock.now = EXPIRY - timedelta(seconds=61)  # margin 60 s: still good
    client.cancel(1)
    assert login.call_count == 1
    clock.now = EXPIRY - timedelta(seconds=30)
    client.cancel(1)
    assert login.call_count == 2
    assert [c.request.headers["token"] for c in cancel.calls] == ["tok-1", "tok-1", "tok-2"]


def test_naive_expiration_is_in_the_platform_zone(router, client, clock):
    login = router.post(LOGIN).mock(return_value=login_reply(expiration="2017-05-17 11:17:31"))
    router.post(CTRL + "Retry/3").mock(return_value=ok(3))
    client.retry(3)
    clock.now = EXPIRY - timedelta(seconds=59)
    client.retry(3)
    assert login.call_count == 2


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(401, json={"State": "failed", "Message": "unauthorized", "Data": None}),
        httpx.Response(401, text=""),
        failed("token已过期,请重新登录"),
    ],
)
def test_one_relogin_on_a_token_refusal(router, client, refusal):
    login = router.post(LOGIN).mock(side_effect=[login_reply("tok-1"), login_reply("tok-2")])
    delete = router.post(CTRL + "Delete/5").mock(side_effect=[refusal, ok(5)])
    assert client.delete(5) == 5
    assert login.call_count == 2
    assert [c.request.headers["token"] for c in delete.calls] == ["tok-1", "tok-2"]


def test_token_refused_twice_gives_up(router, client):
    login = router.post(LOGIN).mock(side_effect=[login_reply("tok-1"), login_reply("tok-2")])
    route = router.post(CTRL + "Delete/5").mock(return_value=failed("token无效", status=401))
    with pytest.raises(PlatformRefused) as info:
        client.delete(5)
    assert info.value.token_refused
    assert info.value.status == 401
    assert info.value.message == "token无效"
    assert (login.call_count, route.call_count) == (2, 2)


# -- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "effect",
    [
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.ConnectError("refused"),
        httpx.RemoteProtocolError("cut"),
    ],
)
def test_transport_errors_are_retryable(router, client, effect):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Add").mock(side_effect=effect)
    with pytest.raises(PlatformRetryable) as info:
        client.add(command())
    assert info.value.status is None


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_server_errors_are_retryable_with_the_message(router, client, status):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Add").mock(return_value=failed("数据库忙", status=status))
    with pytest.raises(PlatformRetryable, match="数据库忙") as info:
        client.add(command())
    assert info.value.status == status


def test_failed_envelope_is_refused_with_its_message(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Delete/1").mock(return_value=failed("找不到要删除的数据"))
    with pytest.raises(PlatformRefused) as info:
        client.delete(1)
    assert info.value.message == "找不到要删除的数据"
    assert info.value.status == 200
    assert info.value.data == 0
    assert not info.value.token_refused
    assert not info.value.login  # a refused command, not our credentials


@pytest.mark.parametrize(
    "response",
    [
        failed("找不到要修改的数据", status=404),
        httpx.Response(400, text="Bad Request"),
        httpx.Response(422, json={"State": "failed", "Message": "ctrl_type 无效"}),
    ],
)
def test_client_errors_are_refused(router, client, response):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Cancel/9").mock(return_value=response)
    with pytest.raises(PlatformRefused) as info:
        client.cancel(9)
    assert info.value.status == response.status_code
    assert info.value.message


def test_the_envelope_decides_success_not_the_status(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Cancel/9").mock(
        return_value=httpx.Response(202, json={"State": "success", "Message": "", "Data": 9})
    )
    assert client.cancel(9) == 9


def test_unreadable_success_reply_is_retryable(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Add").mock(return_value=httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(PlatformRetryable, match="unreadable"):
        client.add(command())


def test_success_without_ctrl_id(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "Add").mock(return_value=ok(0))
    with pytest.raises(PlatformRetryable):
        client.add(command())  # unknown: look it up by ctrl_define_no
    router.post(CTRL + "Update").mock(return_value=ok(0))
    with pytest.raises(PlatformRefused):
        client.update(CtrlDataRecord(ctrl_id=1))


def test_timeouts_come_from_settings(router, clock):
    with make_client(
        router, clock, connect_timeout_seconds=Decimal("2.5"), read_timeout_seconds=40
    ) as c:
        timeout = c._http.timeout
    assert (timeout.connect, timeout.read) == (2.5, 40.0)


# -- endpoints -----------------------------------------------------------------------


def test_add_sends_exact_decimals_and_ctrl_data_as_a_string(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    route = router.post(CTRL + "Add").mock(return_value=ok(1))
    assert client.add(command()) == 1
    request = route.calls.last.request
    assert request.headers["content-type"].startswith("application/json")
    body = json.loads(request.content, parse_float=Decimal)
    assert body["processor_name"] == "iotmeterv1"
    assert body["target_devtype"] == 1
    assert isinstance(body["ctrl_data"], str)
    assert "123456789012345.678" in body["ctrl_data"]
    assert "upper_ctrl_id" not in body


def test_add_multi_sample_reply_matched_by_position(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    route = router.post(CTRL + "AddMulti").mock(
        return_value=ok(
            [
                {"ctrl_id": 8, "target_comm_no": "1234567890", "result": False, "message": ""},
                {"ctrl_id": 9, "target_comm_no": "1234567890", "result": False, "message": ""},
            ],
            Totalcount=2,
            Startrow=0,
            Rowcount=2,
        )
    )
    outcomes = client.add_multi([command(define="a"), command(define="b")])
    assert len(json.loads(route.calls.last.request.content)) == 2
    assert [o.ctrl_id for o in outcomes] == [8, 9]
    assert all(o.exists and o.matched and not o.ok for o in outcomes)


def test_add_multi_mismatch_and_missing_items(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "AddMulti").mock(
        return_value=ok(
            [
                {"ctrl_id": 8, "target_comm_no": "1111", "result": True, "message": ""},
                {"ctrl_id": 0, "target_comm_no": "2222", "result": False, "message": "表不存在"},
            ]
        )
    )
    first, second, third = client.add_multi(
        [command("1111", "a"), command("2222", "b"), command("3333", "c")]
    )
    assert first.exists and first.ok and first.ctrl_id == 8
    assert second.matched and not second.exists and second.message == "表不存在"
    assert not third.matched and third.item is None and third.ctrl_id is None
    router.post(CTRL + "AddMulti").mock(
        return_value=ok([{"ctrl_id": 9, "target_comm_no": "9999", "result": True, "message": ""}])
    )
    (swapped,) = client.add_multi([command("1111", "a")])
    assert not swapped.matched and not swapped.exists and "9999" in swapped.message


def test_empty_batch_sends_nothing(router, client):
    assert client.add_multi([]) == []
    assert client.cancel_multi([]) == []


def test_id_batches(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    reply = ok(
        [
            {"ctrl_id": 8, "target_comm_no": "1234567890", "result": True, "message": ""},
            {"ctrl_id": 0, "target_comm_no": "", "result": False, "message": "找不到"},
        ],
        Message="操作完成",
    )
    for name, call in [
        ("DeleteMulti", client.delete_multi),
        ("CancelMulti", client.cancel_multi),
        ("RetryMulti", client.retry_multi),
    ]:
        route = router.post(CTRL + name).mock(return_value=reply)
        first, second = call([8, 9])
        assert route.calls.last.request.content == b"[8,9]"
        assert first.ok and not second.ok and second.matched and second.message == "找不到"


def test_update_and_update_multi(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    record = CtrlDataRecord(
        ctrl_id=8, company_no="1001", target_comm_no="1234567890", ctrl_type="x", ctrl_data="{}"
    )
    update = router.post(CTRL + "Update").mock(return_value=ok(8))
    assert client.update(record) == 8
    assert json.loads(update.calls.last.request.content)["ctrl_id"] == 8
    router.post(CTRL + "UpdateMulti").mock(
        return_value=ok([{"ctrl_id": 8, "target_comm_no": "1234567890", "result": True}])
    )
    (outcome,) = client.update_multi([record])
    assert outcome.ok


def test_get_model_and_null(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    router.post(CTRL + "GetModel/2").mock(
        return_value=ok({"ctrl_id": 2, "ctrl_state": 3, "return_data": {"remain": 0.1}})
    )
    router.post(CTRL + "GetModel/3").mock(return_value=ok(None))
    record = client.get_model(2)
    assert record is not None
    assert record.return_data == {"remain": Decimal("0.1")}  # exact, never a float
    assert client.get_model(3) is None


def test_get_list_filter_and_paging(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    route = router.post(CTRL + "GetList").mock(
        return_value=ok(
            [{"ctrl_id": 2, "ctrl_define_no": "cmd-1"}], Totalcount=5, Startrow=2, Rowcount=1
        )
    )
    page = client.get_list(
        CtrlDataFilter(ctrl_define_no="cmd-1", ctrl_state=0), startrow=2, rowcount=1
    )
    request = route.calls.last.request
    assert request.url.params["startrow"] == "2"
    assert request.url.params["rowcount"] == "1"
    assert json.loads(request.content) == {"ctrl_define_no": "cmd-1", "ctrl_state": 0}
    assert (page.totalcount, page.startrow, page.rowcount) == (5, 2, 1)
    assert page.items[0].ctrl_id == 2


def test_find_by_define_no_keeps_exact_matches(router, client):
    router.post(LOGIN).mock(return_value=login_reply())
    route = router.post(CTRL + "GetList").mock(
        return_value=ok(
            [{"ctrl_id": 2, "ctrl_define_no": "cmd-1"}, {"ctrl_id": 3, "ctrl_define_no": "cmd-10"}],
            Totalcount=2,
        )
    )
    found = client.find_by_define_no("cmd-1")
    assert [r.ctrl_id for r in found] == [2]
    assert json.loads(route.calls.last.request.content) == {"ctrl_define_no": "cmd-1"}
    assert route.call_count == 1
