"""iotmeterv1 codec: every command both ways, exact decimals, the vendor document's samples."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gasbill.adapters.platform.codec import Codec, CodecError
from gasbill.adapters.platform.jsontext import dumps_exact, loads_exact
from gasbill.adapters.platform.wire import (
    BatchResultItem,
    CtrlDataFilter,
    CtrlDataRecord,
    LoginReply,
    parse_envelope,
)
from gasbill.domain.commands import (
    CtrlState,
    CtrlType,
    EmptyReturn,
    GetChargeState,
    GetPrice,
    LadderPrice,
    OpenAccount,
    OpenAccountReturn,
    Outcome,
    ReleaseForce,
    RemainParam,
    RemoteCharge,
    RemoteChargeReturn,
    RemoteChargeState,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
    SetValveOn,
    Unreadable,
)
from gasbill.domain.errors import TariffNotEncodable
from gasbill.domain.money import Money, Price, Volume
from tests.vendor_samples import COMMAND_TYPES, STRUCTURES, example, sample

ZONE = ZoneInfo("Asia/Shanghai")
CODEC = Codec(ZONE)

LADDER = LadderPrice(
    tuple(Price(p) for p in ("2.61", "2.83", "4.23", "4.23", "4.23")),
    tuple(Volume(v) for v in ("350", "500", "500", "500")),
    date(2019, 1, 1),
    12,
)

COMMANDS = [
    SetPrice(LADDER),
    GetPrice(),
    SetRemain(Money("88.8")),
    RemoteCharge(Money("100"), Money("350.5"), 4),
    GetChargeState(),
    OpenAccount.of(Money("50"), Money("50"), LADDER),
    SetValveOn(),
    SetValveOff(),
    SetCumulant(Volume("1234.567"), Volume("1250.001")),
    ReleaseForce(),
]

RESULTS = [
    (CtrlType.SET_PRICE, EmptyReturn()),
    (CtrlType.GET_PRICE, LADDER),
    (CtrlType.SET_REMAIN, RemainParam(Money("88.8"))),
    (CtrlType.REMOTE_CHARGE, RemoteChargeReturn(0xAA, 0, 0, Money("188.8"))),
    (CtrlType.REMOTE_CHARGE, RemoteChargeReturn(0xBB, 3, 0, Money("88.8"))),
    (
        CtrlType.GET_CHARGE_STATE,
        RemoteChargeState(1, Money("20"), Money("20"), 4, Money("100"), Money("350.5")),
    ),
    (CtrlType.OPEN_ACCOUNT, OpenAccountReturn(0, 0, "", Money("50"))),
    (CtrlType.OPEN_ACCOUNT, OpenAccountReturn(1, 7, "已开户", Money("0"))),
    (CtrlType.SET_VALVE_ON, EmptyReturn()),
    (CtrlType.SET_VALVE_OFF, EmptyReturn()),
    (CtrlType.SET_CUMULANT, EmptyReturn()),
    (CtrlType.RELEASE_FORCE, EmptyReturn()),
]


# -- commands ------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: type(c).__name__)
def test_every_command_both_ways(command):
    ctrl_type, ctrl_data = CODEC.encode(command)
    assert ctrl_type == command.ctrl_type.value
    assert isinstance(ctrl_data, str)
    assert isinstance(json.loads(ctrl_data), dict)
    assert CODEC.decode_command(ctrl_type, ctrl_data) == command
    assert CODEC.decode_command(ctrl_type, loads_exact(ctrl_data)) == command  # as an object


def test_empty_commands_send_the_samples_string():
    for command in (GetPrice(), GetChargeState(), SetValveOn(), SetValveOff(), ReleaseForce()):
        assert CODEC.encode(command)[1] == "{}"


def test_exact_ctrl_data_texts():
    assert CODEC.encode(SetPrice(LADDER))[1] == (
        '{"price1":2.61,"ladder1":350,"price2":2.83,"ladder2":500,"price3":4.23,"ladder3":500,'
        '"price4":4.23,"ladder4":500,"price5":4.23,'
        '"cycle_start":"2019-01-01T00:00:00","cycle_month":12}'
    )
    assert CODEC.encode(RemoteCharge(Money("0.1"), Money("0.30"), 3))[1] == (
        '{"charge_value":0.1,"total_value":0.30,"charge_times":3}'
    )
    assert CODEC.encode(SetRemain(Money("123456789012345.678")))[1] == (
        '{"remain_value":123456789012345.678}'
    )
    assert CODEC.encode(SetCumulant(Volume("1E+2"), Volume("0.001")))[1] == (
        '{"std_sum":100,"work_sum":0.001}'
    )
    opened = json.loads(CODEC.encode(COMMANDS[5])[1], parse_float=Decimal)
    assert list(opened) == [
        "charge_value",
        "total_value",
        *[f"{n}{k}" for k in range(1, 5) for n in ("price", "ladder")],
        "price5",
        "cycle_start_time",
        "cycle_month",
    ]
    assert all(type(opened[f"ladder{k}"]) is int for k in range(1, 5))  # UInt32


def test_openaccount_non_whole_ladders_refused_both_ways():
    sent = json.loads(CODEC.encode(COMMANDS[5])[1], parse_float=Decimal)
    sent["ladder1"] = Decimal("350.5")
    with pytest.raises(CodecError, match="whole"):
        CODEC.decode_command(CtrlType.OPEN_ACCOUNT, dumps_exact(sent))
    forged = OpenAccount.of(Money("50"), Money("50"), LADDER)
    object.__setattr__(forged, "ladders", (Volume("350.5"), *LADDER.ladders[1:]))
    with pytest.raises(TariffNotEncodable):
        CODEC.encode(forged)


def test_bad_ctrl_data_refused():
    with pytest.raises(CodecError, match="unknown ctrl_type"):
        CODEC.decode_command("iotmeter.openvalve", "{}")
    with pytest.raises(CodecError, match="charge_times"):
        CODEC.decode_command(CtrlType.REMOTE_CHARGE, '{"charge_value":1,"total_value":1}')
    with pytest.raises(CodecError, match="3 decimal"):
        CODEC.decode_command(CtrlType.SET_REMAIN, '{"remain_value":1.0001}')
    with pytest.raises(CodecError):
        CODEC.decode_command(CtrlType.SET_VALVE_ON, "not json")


def test_new_ctrl_data_in_the_platform_zone():
    body = CODEC.new_ctrl_data(
        SetValveOn(),
        ctrl_define_no="cmd-42",
        target_comm_no="12345678901234",
        ctrl_time=datetime(2017, 4, 17, 2, 12, 10, tzinfo=UTC),
        ctrl_timeout=datetime(2017, 4, 20, 2, 12, 10, tzinfo=UTC),
    ).body()
    assert body == {
        "processor_name": "iotmeterv1",
        "ctrl_define_no": "cmd-42",
        "target_comm_no": "12345678901234",
        "target_devtype": 1,
        "ctrl_time": "2017-04-17T10:12:10",
        "ctrl_timeout": "2017-04-20T10:12:10",
        "ctrl_type": "iotmeterv1.common.setvalveon",
        "ctrl_data": "{}",
    }
    assert '"ctrl_data":"{}"' in dumps_exact(body)


# -- results -------------------------------------------------------------------------


@pytest.mark.parametrize(("ctrl_type", "result"), RESULTS, ids=lambda x: str(x)[:30])
def test_every_result_both_ways(ctrl_type, result):
    text = CODEC.encode_result(result)
    assert CODEC.decode_result(ctrl_type, text) == result  # a string holding JSON
    assert CODEC.decode_result(ctrl_type, loads_exact(text)) == result  # an object


def test_top_up_flags():
    applied = CODEC.decode_result(
        CtrlType.REMOTE_CHARGE, '{"success":170,"reason":0,"calc_type":0,"remain":12.5}'
    )
    assert isinstance(applied, RemoteChargeReturn)
    assert applied.outcome is Outcome.APPLIED
    assert applied.remain == Money("12.5")
    refused = CODEC.decode_result(CtrlType.REMOTE_CHARGE, {"success": 0xBB, "reason": 2})
    assert isinstance(refused, RemoteChargeReturn)
    assert refused.refused
    assert refused.remain is None
    other = CODEC.decode_result(CtrlType.REMOTE_CHARGE, {"success": 1})
    assert isinstance(other, RemoteChargeReturn)
    assert other.outcome is Outcome.UNKNOWN


def test_open_account_flags():
    ok = CODEC.decode_result(CtrlType.OPEN_ACCOUNT, '{"success":0,"reason":0,"remain":50}')
    assert isinstance(ok, OpenAccountReturn)
    assert ok.applied
    no = CODEC.decode_result(
        CtrlType.OPEN_ACCOUNT, '{"success":1,"reason":4,"reason_msg":"已开户","remain":0}'
    )
    assert isinstance(no, OpenAccountReturn)
    assert no.refused
    assert no.reason_msg == "已开户"


@pytest.mark.parametrize(
    "return_data",
    [None, "", "   ", "not json", "[]", "{}", '{"reason":0}', '{"success":"abc"}',
     '{"success":true}', '{"success":170.5}', '{"success":170,"remain":NaN}',
     '{"success":170,"remain":1e20}'],
)  # fmt: skip
def test_unreadable_top_up_replies_are_never_a_success(return_data):
    result = CODEC.decode_result(CtrlType.REMOTE_CHARGE, return_data)
    assert isinstance(result, Unreadable)
    assert result.reason


def test_unreadable_for_other_structures():
    assert isinstance(CODEC.decode_result(CtrlType.SET_VALVE_ON, None), Unreadable)
    assert isinstance(CODEC.decode_result(CtrlType.SET_VALVE_ON, ""), Unreadable)
    assert isinstance(CODEC.decode_result("iotmeter.openvalve", "{}"), Unreadable)
    partial = '{"card_charge_times":0,"remote_charge_times":3,"remote_total_value":30}'
    assert isinstance(CODEC.decode_result(CtrlType.GET_CHARGE_STATE, partial), Unreadable)
    assert isinstance(CODEC.decode_result(CtrlType.GET_PRICE, "{}"), Unreadable)
    assert isinstance(CODEC.decode_result(CtrlType.OPEN_ACCOUNT, "{}"), Unreadable)
    raw = CODEC.decode_result(CtrlType.SET_REMAIN, {"remain_value": "x"})
    assert isinstance(raw, Unreadable)
    assert raw.raw == '{"remain_value":"x"}'


def test_returned_doubles_read_through_their_text_and_quantized():
    result = CODEC.decode_result(CtrlType.SET_REMAIN, '{"remain_value":12.34560000000001}')
    assert result == RemainParam(Money("12.346"))
    # an object someone else parsed with floats: read through the float's shortest text
    assert CODEC.decode_result(CtrlType.SET_REMAIN, {"remain_value": 0.1}) == RemainParam(
        Money("0.1")
    )
    assert CODEC.decode_result(CtrlType.SET_REMAIN, '{"remain_value":-0.0005}') == RemainParam(
        Money("-0.001")
    )


def test_exact_decimals_survive_with_no_float_artefacts():
    for text in ("0.1", "123456789012345.678", "0.3", "2.675"):
        sent = CODEC.encode(SetRemain(Money(text)))[1]
        assert sent == f'{{"remain_value":{text}}}'
        back = CODEC.decode_result(CtrlType.SET_REMAIN, sent)
        assert isinstance(back, RemainParam)
        assert str(back.remain_value.value) in (text, text + "0" * (3 - len(text.split(".")[1])))
        assert back.remain_value == Money(text)


def test_cycle_start_date_time_forms():
    sent = json.loads(CODEC.encode_result(LADDER), parse_float=Decimal)
    for form, day in [
        ("2019-01-01", date(2019, 1, 1)),
        ("2019-01-01T00:00:00", date(2019, 1, 1)),
        ("2019-01-01 00:00:00", date(2019, 1, 1)),
        ("2018-12-31T16:00:00Z", date(2019, 1, 1)),
        ("2019-01-01T00:00:00.0000000+08:00", date(2019, 1, 1)),
    ]:
        result = CODEC.decode_result(CtrlType.GET_PRICE, dumps_exact({**sent, "cycle_start": form}))
        assert result == replace(LADDER, cycle_start=day)
    bad = CODEC.decode_result(CtrlType.GET_PRICE, dumps_exact({**sent, "cycle_start": "soon"}))
    assert isinstance(bad, Unreadable)


DECIMALS = st.decimals(
    min_value=Decimal("-999999999999999.999"),
    max_value=Decimal("999999999999999.999"),
    places=3,
    allow_nan=False,
    allow_infinity=False,
)


@given(DECIMALS, DECIMALS)
def test_any_three_place_decimal_survives_encode_decode(a, b):
    command = SetCumulant(Volume(a), Volume(b))
    assert CODEC.decode_command(*CODEC.encode(command)) == command
    back = CODEC.decode_result(CtrlType.SET_REMAIN, CODEC.encode(SetRemain(Money(a)))[1])
    assert back == RemainParam(Money(a))
    state = RemoteChargeState(0, Money(a), Money(b), 1, Money(b), Money(a))
    assert CODEC.decode_result(CtrlType.GET_CHARGE_STATE, CODEC.encode_result(state)) == state


@given(st.decimals(min_value=Decimal("0.001"), max_value=Decimal("999999999"), places=3))
def test_any_top_up_survives(value):
    command = RemoteCharge(Money(value), Money(value) * 2, 2)
    assert CODEC.decode_command(*CODEC.encode(command)) == command


# -- the vendor's own samples (tests/fixtures/vendor, also read by the simulator's tests) -----


def test_get_model_sample():
    envelope = parse_envelope(sample("4.2.4-get-model-reply"))
    assert envelope is not None
    assert envelope.ok
    record = CtrlDataRecord.model_validate(envelope.Data)
    assert record.ctrl_id == 2
    assert record.state is CtrlState.WAITING
    assert not record.state.is_final
    assert record.time_of("ctrl_time", ZONE) == datetime(2017, 4, 17, 2, 12, 10, tzinfo=UTC)
    assert isinstance(CODEC.result_of(record), Unreadable)  # "iotmeter.openvalve": shape only
    as_v1 = record.model_copy(update={"ctrl_type": CtrlType.SET_VALVE_ON.value})
    assert CODEC.result_of(as_v1) == EmptyReturn()
    assert CODEC.command_of(as_v1) == SetValveOn()
    assert loads_exact(dumps_exact(record.body())) == envelope.Data
    assert list(record.body()) == list(envelope.Data)  # every field, in the sample's order


def test_get_list_and_update_samples():
    envelope = parse_envelope(sample("4.2.5-get-list-reply"))
    assert envelope is not None and envelope.ok
    assert (envelope.Totalcount, envelope.Startrow, envelope.Rowcount) == (1, 0, 1)
    (record,) = [CtrlDataRecord.model_validate(r) for r in envelope.Data]
    assert record.ctrl_id == 2
    assert set(CtrlDataFilter.model_fields) == set(sample("4.2.5-get-list"))
    update = CtrlDataRecord.model_validate(sample("4.2.2-update"))
    assert list(update.body()) == list(sample("4.2.2-update"))
    assert update.time_of("sync_time", ZONE) == datetime(2017, 4, 17, 16, tzinfo=UTC)


def test_add_sample_has_the_fields_we_send():
    ours = CODEC.new_ctrl_data(
        SetValveOn(),
        ctrl_define_no="c-1",
        target_comm_no="88600000000001",
        ctrl_time=datetime(2025, 1, 1, tzinfo=UTC),
        ctrl_timeout=datetime(2025, 1, 2, tzinfo=UTC),
    )
    assert list(ours.body()) == list(sample("4.2.1-add"))
    for item in sample("4.2.8-add-multi"):
        assert set(item) == set(ours.body())
    added = parse_envelope(sample("4.2.1-add-reply"))
    assert added is not None and added.ok and added.Data == 1


@pytest.mark.parametrize(
    "name", ["4.2.8-add-multi-reply", "4.2.9-update-multi-reply", "4.2.10-multi-reply"]
)
def test_batch_reply_samples(name):
    envelope = parse_envelope(sample(name))
    assert envelope is not None and envelope.ok
    assert (envelope.Totalcount, envelope.Startrow, envelope.Rowcount) == (2, 0, 2)
    items = [BatchResultItem.model_validate(i) for i in envelope.Data]
    assert [i.ctrl_id for i in items] == [8, 9]
    assert [i.result for i in items] == [name != "4.2.8-add-multi-reply"] * 2


@pytest.mark.parametrize(
    "name",
    ["4.2.3-delete-reply-failed", "4.2.6-cancel-reply-failed", "4.2.7-retry-reply-failed"],
)
def test_failure_samples(name):
    envelope = parse_envelope(sample(name))
    assert envelope is not None and not envelope.ok
    assert envelope.Data == 0 and envelope.Message.startswith("找不到要")


def test_login_sample():
    envelope = parse_envelope(sample("2.2.2-login-reply"))
    assert envelope is not None and envelope.ok
    reply = LoginReply.model_validate(envelope.Data)
    assert len(reply.token) == 384
    assert reply.expires_at(ZONE) == datetime(2017, 5, 17, 3, 17, 31, 689502, tzinfo=UTC)


def test_command_table_and_structures_are_the_documents():
    assert {t.value for t in CtrlType} == set(COMMAND_TYPES)
    for command in COMMANDS:
        ctrl_type, ctrl_data = CODEC.encode(command)
        written = json.loads(ctrl_data, parse_float=Decimal)
        assert list(written) == list(STRUCTURES[COMMAND_TYPES[ctrl_type][0]]), ctrl_type


@pytest.mark.parametrize("ctrl_type", sorted(COMMAND_TYPES))
def test_return_data_with_the_documents_fields_is_read(ctrl_type):
    structure = COMMAND_TYPES[ctrl_type][1]
    result = CODEC.decode_result(ctrl_type, dumps_exact(example(structure)))
    assert not isinstance(result, Unreadable), result


def test_record_with_return_data_as_object_keeps_exact_numbers():
    body = (
        '{"State":"success","Message":"","Data":{"ctrl_id":5,"ctrl_state":3,'
        '"ctrl_type":"iotmeterv1.prepay.remotecharge",'
        '"ctrl_data":{"charge_value":0.1,"total_value":0.3,"charge_times":3},'
        '"return_data":{"success":170,"reason":0,"calc_type":0,"remain":0.3}}}'
    )
    envelope = parse_envelope(loads_exact(body))
    assert envelope is not None
    record = CtrlDataRecord.model_validate(envelope.Data)
    assert CODEC.command_of(record) == RemoteCharge(Money("0.1"), Money("0.3"), 3)
    assert CODEC.result_of(record) == RemoteChargeReturn(170, 0, 0, Money("0.3"))
    assert '"remain":0.3' in dumps_exact(record.body())


def test_envelope_failed_and_odd_bodies():
    failed = parse_envelope(
        loads_exact('{"Data":0,"State":"failed","Message":"找不到要删除的数据"}')
    )
    assert failed is not None
    assert not failed.ok
    assert failed.Message == "找不到要删除的数据"
    assert parse_envelope([1, 2]) is None
    assert parse_envelope({"Data": 1}) is None
    lower = parse_envelope({"state": "success", "message": None, "data": 3})
    assert lower is not None
    assert lower.ok
    assert lower.Data == 3


def test_dumps_exact_never_writes_a_float():
    with pytest.raises(TypeError):
        dumps_exact({"x": 0.1})
    assert dumps_exact({"a": [Decimal("0.10"), 1, True, None, "名"]}) == (
        '{"a":[0.10,1,true,null,"名"]}'
    )
    with pytest.raises(ValueError, match="NaN"):
        loads_exact('{"x":NaN}')


def test_report_sample_is_taken_by_our_report_endpoint_model():
    from gasbill.api.platform.reports import ReportIn

    items = [ReportIn.model_validate(i) for i in sample("4.2.12-report")]
    assert [(i.ctrl_id, i.ctrl_state, i.meter_comm_no) for i in items] == [(1, 3, "1234567890")] * 2
    reply = parse_envelope(sample("4.2.12-report-reply"))
    assert reply is not None and reply.ok and [i["result"] for i in reply.Data] == [False, False]
