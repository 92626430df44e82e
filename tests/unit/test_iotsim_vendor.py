"""The simulator's own reading of ctrl_data and writing of return_data, against the document.

The field lists come from the document (tests/fixtures/vendor), not from
gasbill's codec: a structure read or written with another field set fails here.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from iotsim import vendor
from iotsim.jsonwire import write_json
from iotsim.vendor import (
    STATE_TEXTS,
    BadParam,
    CtrlState,
    Empty,
    LadderPrice,
    OpenAccountReturn,
    RemainParam,
    RemoteChargeReturn,
    RemoteChargeState,
    read_ctrl_data,
    write_return_data,
)
from tests.vendor_samples import COMMAND_TYPES, DOC, STRUCTURES, example

ZONE = ZoneInfo("Asia/Shanghai")
LADDER = LadderPrice(
    tuple(Decimal(p) for p in ("2.61", "2.83", "4.23", "4.23", "4.23")),
    tuple(Decimal(v) for v in ("350", "500", "500", "500")),
    date(2019, 1, 1),
    12,
)
REPLIES = {
    "ladder_price": LADDER,
    "remain_param": RemainParam(Decimal("88.800")),
    "remote_charge_return": RemoteChargeReturn(0xAA, 0, 0, Decimal("188.800")),
    "remote_charge_state": RemoteChargeState(
        1, Decimal(20), Decimal(20), 4, Decimal(100), Decimal("350.5")
    ),
    "open_account_return": OpenAccountReturn(0, 0, "", Decimal(50)),
    "{}": Empty(),
}


def test_the_command_table_is_the_documents():
    assert set(COMMAND_TYPES) == set(vendor.CTRL_TYPES)
    assert {k: list(v) for k, v in vendor.CTRL_TYPES.items()} == COMMAND_TYPES
    assert (
        DOC["processor_name"],
        DOC["target_devtype"],
    ) == (vendor.PROCESSOR_NAME, vendor.TARGET_DEVTYPE_METER)
    assert {str(int(s)): t for s, t in STATE_TEXTS.items()} == DOC["ctrl_states"]
    assert [s for s in CtrlState if not s.is_final] == [0, 1, 2]


@pytest.mark.parametrize("ctrl_type", sorted(COMMAND_TYPES))
def test_ctrl_data_with_the_documents_fields_is_read(ctrl_type):
    structure = COMMAND_TYPES[ctrl_type][0]
    given = example(structure)
    as_string = read_ctrl_data(ctrl_type, write_json(given), ZONE)
    as_object = read_ctrl_data(ctrl_type, given, ZONE)
    assert as_string == as_object
    if structure == "{}":
        assert as_object == Empty()


@pytest.mark.parametrize(
    ("ctrl_type", "field"),
    [
        (ctrl_type, field)
        for ctrl_type, (structure, _) in sorted(COMMAND_TYPES.items())
        for field in STRUCTURES[structure]
    ],
)
def test_a_missing_field_is_refused_not_defaulted_to_zero(ctrl_type, field):
    given = example(COMMAND_TYPES[ctrl_type][0])
    del given[field]
    with pytest.raises(BadParam, match=field):
        read_ctrl_data(ctrl_type, given, ZONE)


def test_values_the_meter_cannot_hold_are_refused():
    charge = vendor.REMOTE_CHARGE
    with pytest.raises(BadParam, match=r"finer than 0\.001"):
        read_ctrl_data(charge, '{"charge_value":1.0005,"total_value":1,"charge_times":1}', ZONE)
    with pytest.raises(BadParam, match="not a JSON number"):
        read_ctrl_data(charge, '{"charge_value":"10","total_value":10,"charge_times":1}', ZONE)
    with pytest.raises(BadParam, match="charge_times"):
        read_ctrl_data(charge, '{"charge_value":10,"total_value":10,"charge_times":1.5}', ZONE)
    opening = example("open_account_param") | {"ladder2": Decimal("500.5")}
    with pytest.raises(BadParam, match="ladder2"):  # UInt32: whole m³ only
        read_ctrl_data(vendor.OPEN_ACCOUNT, opening, ZONE)
    with pytest.raises(BadParam, match="cycle_start"):
        read_ctrl_data(vendor.SET_PRICE, example("ladder_price") | {"cycle_start": "soon"}, ZONE)
    with pytest.raises(BadParam, match="unknown ctrl_type"):
        read_ctrl_data("iotmeter.openvalve", "{}", ZONE)
    with pytest.raises(BadParam, match="not a JSON object"):
        read_ctrl_data(vendor.SET_VALVE_ON, "[]", ZONE)


def test_setprice_and_openaccount_read_their_ladders():
    setprice = read_ctrl_data(vendor.SET_PRICE, example("ladder_price"), ZONE)
    assert setprice == LadderPrice(
        (Decimal("3.500"),) * 5, (Decimal("3.500"),) * 4, date(2025, 1, 1), 2
    )
    opening = read_ctrl_data(vendor.OPEN_ACCOUNT, example("open_account_param"), ZONE)
    assert isinstance(opening, vendor.OpenAccountParam)
    assert opening.ladder.ladders == (Decimal(300),) * 4
    assert opening.ladder.prices == (Decimal("12.500"),) * 5


@pytest.mark.parametrize("structure", sorted(REPLIES))
def test_return_data_carries_the_documents_fields_in_order(structure):
    text = write_return_data(REPLIES[structure])
    written = json.loads(text, parse_float=Decimal)
    assert list(written) == list(STRUCTURES[structure])


def test_return_data_numbers_as_a_csharp_service_writes_them():
    charge = write_return_data(RemoteChargeReturn(0xAA, 0, 0, Decimal("130.000")))
    assert charge == '{"success":170,"reason":0,"calc_type":0,"remain":130.0}'
    state = write_return_data(REPLIES["remote_charge_state"])
    assert '"remote_total_value":350.5' in state and '"card_charge_value":20.0' in state
    price = write_return_data(LADDER)
    assert price.startswith('{"price1":2.61,"ladder1":350.0,"price2":2.83')
    assert price.endswith('"cycle_start":"2019-01-01T00:00:00","cycle_month":12}')
    assert write_return_data(Empty()) == "{}"
