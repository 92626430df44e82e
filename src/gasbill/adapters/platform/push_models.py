"""What the platform pushes (spec §4.1, §4.5, §4.7) and how it queries, validated at the edge.

Bodies are parsed from bytes by `parse_json` (push_body.py: decimals exact, NaN and
Infinity refused), then validated here. Types are strict: a number where a
string belongs, or a string where a number belongs, is refused rather than
coerced, and every field is held to its column: nvarchar(N) lengths, no NUL
characters, decimal(18,3) (at most 15 integer digits and 3 decimals), 32-bit
ints.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictInt,
    WithJsonSchema,
    field_validator,
)

from gasbill.adapters.platform.jsontext import loads_exact

# the body's reading, in its own module (push_body.py), named here too
from gasbill.adapters.platform.push_body import MAX_DEPTH as MAX_DEPTH
from gasbill.adapters.platform.push_body import BadBody as BadBody
from gasbill.adapters.platform.push_body import describe as describe
from gasbill.adapters.platform.push_body import nests_deeper_than as nests_deeper_than
from gasbill.adapters.platform.push_body import parse_json as parse_json
from gasbill.adapters.platform.push_rules import FROZEN_HAS_VOLUME, WINDOW_RULES
from gasbill.service.ingest_records import DeviceRecord, PushedReading

DECIMAL_LIMIT = Decimal(10) ** 15  # decimal(18,3): 15 digits before the point
INT32 = 2**31 - 1


# -- field types ----------------------------------------------------------------


def no_nul(value: str) -> str:
    """Refuse a NUL character: PostgreSQL text cannot hold one (the shared text rule)."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


_no_nul = no_nul
# what OpenAPI shows of each rule the validators keep (schemathesis holds them to it)
_NO_NUL = {"pattern": "^[^\\x00]*$"}
_SOME_TEXT = {"pattern": "^[^\\x00]*[^\\s\\x00][^\\x00]*$"}  # not empty nor blank
_TIME = {
    "pattern": r"^(19\d\d|2[01]\d\d)-(0[1-9]|1[0-2])-(0[1-9]|1\d|2[0-8])"
    r"([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(\.\d{1,9})?)?(Z|[+-](0\d|1[0-4]):?[0-5]\d)?$"
}
Text50 = Annotated[
    str, Field(strict=True, max_length=50, json_schema_extra=_NO_NUL), AfterValidator(_no_nul)
]
CommNo = Annotated[
    str, Field(strict=True, max_length=50, json_schema_extra=_SOME_TEXT), AfterValidator(_no_nul)
]
Text500 = Annotated[
    str, Field(strict=True, max_length=500, json_schema_extra=_NO_NUL), AfterValidator(_no_nul)
]
# nvarchar(max) in the vendor's table; 4,000 characters (SQL Server's longest bounded
# nvarchar) keeps a whole reading inside the body limit, so its refusal is this field's
LongText = Annotated[
    str,
    Field(strict=True, max_length=4_000, json_schema_extra=_NO_NUL),
    AfterValidator(_no_nul),
]
Sequence4 = Annotated[
    str,
    Field(strict=True, max_length=4, json_schema_extra={"enum": ["asc", "desc"]}),
    AfterValidator(_no_nul),
]


def _decimal_18_3(value: Any) -> Decimal:
    kind = type(value)
    number: Decimal
    if kind is Decimal:
        number = value
    elif kind is int:
        number = Decimal(value)
    else:
        raise ValueError(f"must be a JSON number, not {kind.__name__}")
    if not number.is_finite():
        raise ValueError("must be a finite number")
    if not -DECIMAL_LIMIT < number < DECIMAL_LIMIT:
        raise ValueError("is beyond decimal(18,3) (at most 15 digits before the point)")
    if number != number.quantize(THOUSANDTH):
        raise ValueError("has more than 3 decimals (decimal(18,3))")
    return number


THOUSANDTH = Decimal("0.001")
# the whole check (no second pass by pydantic's own Decimal): a JSON number, exact
# OpenAPI states the same bounds (schemathesis generates multipleOf with exact fractions)
Decimal18_3 = Annotated[
    Decimal,
    PlainValidator(_decimal_18_3),
    WithJsonSchema(
        {
            "type": "number",
            "multipleOf": 0.001,
            "exclusiveMinimum": -(10**15),
            "exclusiveMaximum": 10**15,
        }
    ),
]


def _integral(value: Any) -> Any:
    """JSON's 1.0 is the integer 1 (as JSON Schema counts it); 1.5 stays refused.

    Bodies are read exactly (`loads_exact`), so 1.0 arrives as a Decimal.
    """
    if isinstance(value, Decimal):
        # beyond 2**63 no field fits: refused as it is, with no huge int made
        if value.is_finite() and value.adjusted() < 19 and value == value.to_integral_value():
            return int(value)
    elif isinstance(value, float) and value.is_integer() and abs(value) < 2.0**63:
        return int(value)
    return value


Int32 = Annotated[StrictInt, Field(ge=-INT32 - 1, le=INT32), BeforeValidator(_integral)]


def _json_object(value: Any) -> dict[str, Any]:
    """`ext_data`, `alarm_data`, `event_data`: an object, or a string holding one."""
    if isinstance(value, str):
        _no_nul(value)
        if not value.strip():
            return {}
        try:
            value = loads_exact(value)
        except ValueError as exc:
            raise ValueError(f"is a string that does not hold JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError("must be a JSON object or a string holding one")
    return value


JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]


def _time_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a date-time string, not {type(value).__name__}")
    return _no_nul(value)


PlatformTime = Annotated[
    str, BeforeValidator(_time_text), Field(json_schema_extra=_TIME)
]  # parsed with the zone by the service


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# -- pushes -------------------------------------------------------------------------


class MeterDataIn(_Strict):
    """A reading (spec §4.1). Unknown extra fields are ignored, as the platform may add some."""

    model_config = ConfigDict(extra="ignore", frozen=True, json_schema_extra=FROZEN_HAS_VOLUME)

    meter_comm_no: CommNo
    data_type: Annotated[
        StrictInt, BeforeValidator(_integral), Field(json_schema_extra={"enum": [0, 1]})
    ]
    acquisition_time: PlatformTime
    receive_time: PlatformTime | None = None
    device_type: Int32 | None = None
    device_type_name: Text50 | None = None
    factory_code: Text50 | None = None
    meter_area_no: Text50 | None = None
    meter_define_no1: Text50 | None = None
    meter_define_no2: Text50 | None = None
    meter_define_no3: Text50 | None = None
    meter_define_no4: Text50 | None = None
    data_type_name: Text50 | None = None
    std_sum: Decimal18_3 | None = None
    work_sum: Decimal18_3 | None = None
    std_flow: Decimal18_3 | None = None
    work_flow: Decimal18_3 | None = None
    temperature: Decimal18_3 | None = None
    pressure: Decimal18_3 | None = None
    magatt_times: Int32 | None = None
    this_month_sum: Decimal18_3 | None = None
    last_month_sum: Decimal18_3 | None = None
    this_cycle_sum: Decimal18_3 | None = None
    last_cycle_sum: Decimal18_3 | None = None
    remain_money: Decimal18_3 | None = None
    remain_volume: Decimal18_3 | None = None
    curr_price: Decimal18_3 | None = None
    meter_state: Int32 | None = None
    meter_stat_emsg: LongText | None = None
    rssi: Int32 | None = None
    battery_voltage: Decimal18_3 | None = None
    battery_level: Int32 | None = None
    ext_data: JsonObject | None = None

    @field_validator("meter_comm_no")
    @classmethod
    def _comm_no(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("data_type")
    @classmethod
    def _data_type(cls, value: int) -> int:
        if value not in (0, 1):
            raise ValueError(f"unknown data_type {value}: 0 is real-time data, 1 frozen data")
        return value

    def record(self) -> PushedReading:
        """The service's reading: the validated values as they are, in one tuple."""
        return _make_reading(self.__dict__.values())


# the fields are the service's, in its order (so the values go over without a name each)
assert tuple(MeterDataIn.model_fields) == PushedReading._fields
_make_reading = PushedReading._make


def _device_type(value: Any) -> str:
    """A string in pushes, an int in queries (spec §5.4): accept either, keep the text."""
    value = _integral(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or an integer")
    if isinstance(value, int) and not -INT32 - 1 <= value <= INT32:
        raise ValueError("is beyond a 32-bit integer")
    return _no_nul(str(value))


DeviceType = Annotated[
    str,
    BeforeValidator(_device_type),
    Field(max_length=50),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": 50, **_NO_NUL},
                {"type": "integer", "minimum": -INT32 - 1, "maximum": INT32},
            ]
        }
    ),
]


class AlarmIn(_Strict):
    device_comm_no: Text50
    device_type: DeviceType | None = None
    alarm_time: PlatformTime
    receive_time: PlatformTime | None = None
    alarm_code: Int32
    alarm_content: Text500 | None = None
    alarm_data: JsonObject | None = None

    def record(self) -> DeviceRecord:
        return DeviceRecord(
            "alarm",
            self.device_comm_no,
            self.device_type,
            self.alarm_time,
            self.receive_time,
            self.alarm_code,
            self.alarm_content,
            self.alarm_data,
        )


class EventIn(_Strict):
    device_comm_no: Text50
    device_type: DeviceType | None = None
    event_time: PlatformTime
    receive_time: PlatformTime | None = None
    event_code: Int32
    event_content: Text500 | None = None
    event_data: JsonObject | None = None

    def record(self) -> DeviceRecord:
        return DeviceRecord(
            "event",
            self.device_comm_no,
            self.device_type,
            self.event_time,
            self.receive_time,
            self.event_code,
            self.event_content,
            self.event_data,
        )


# -- queries ------------------------------------------------------------------------

REAL_ORDER = (
    "meter_comm_no",
    "acquisition_time",
    "receive_time",
    "meter_define_no1",
    "meter_define_no3",
)


class RealListQuery(_Strict):
    model_config = ConfigDict(extra="forbid", frozen=True)

    meter_comm_nos: list[Text50] | None = Field(default=None, max_length=1000)
    acq_start_time: PlatformTime | None = None
    acq_end_time: PlatformTime | None = None
    rec_start_time: PlatformTime | None = None
    rec_end_time: PlatformTime | None = None
    orderby: (
        Annotated[
            str,
            Field(strict=True, max_length=50, json_schema_extra={"enum": list(REAL_ORDER)}),
            AfterValidator(_no_nul),
        ]
        | None
    ) = None
    sequence: Sequence4 | None = None

    @field_validator("orderby")
    @classmethod
    def _orderby(cls, value: str | None) -> str | None:
        if value is not None and value not in REAL_ORDER:
            raise ValueError(f"must be one of {', '.join(REAL_ORDER)}")
        return value

    @field_validator("sequence")
    @classmethod
    def _sequence(cls, value: str | None) -> str | None:
        if value is not None and value not in ("asc", "desc"):
            raise ValueError("must be asc or desc")
        return value


Day = Annotated[StrictInt, Field(ge=1, le=31), BeforeValidator(_integral)]
Hour = Annotated[StrictInt, Field(ge=0, le=23), BeforeValidator(_integral)]
Minute = Annotated[StrictInt, Field(ge=0, le=59), BeforeValidator(_integral)]


class MonthWindow(_Strict):
    """year/month/start_*/end_* on the acquisition (alarm, event) time, inside one month."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=WINDOW_RULES)

    year: Annotated[StrictInt, Field(ge=2000, le=2100), BeforeValidator(_integral)] | None = None
    month: Annotated[StrictInt, Field(ge=1, le=12), BeforeValidator(_integral)] | None = None
    start_day: Day | None = None
    start_hour: Hour | None = None
    start_minute: Minute | None = None
    end_day: Day | None = None
    end_hour: Hour | None = None
    end_minute: Minute | None = None


class HistoryQuery(MonthWindow):
    meter_comm_no: Text50 | None = None
    data_type: Int32 | None = None


class DeviceListQuery(MonthWindow):
    device_comm_no: Text50 | None = None
    device_type: Int32 | None = None
