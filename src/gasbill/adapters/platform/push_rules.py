"""The platform models' cross-field rules as OpenAPI shows them (JSON Schema `if`/`then`).

The validators keep these rules; stating them in the schema lets schemathesis (and any
client generator) know that a frozen reading without its volume, or a window's day
without its month, is refused.
"""

from __future__ import annotations

from pydantic.config import JsonDict


def _given_number(name: str) -> JsonDict:
    return {"required": [name], "properties": {name: {"type": "number"}}}


# a frozen reading (data_type 1) carries its cumulative volume: the ingest refuses it without
FROZEN_HAS_VOLUME: JsonDict = {
    "if": {"required": ["data_type"], "properties": {"data_type": {"const": 1}}},
    "then": {"anyOf": [_given_number("std_sum"), _given_number("work_sum")]},
}


_WINDOW_PARTS = ("start_day", "start_hour", "start_minute", "end_day", "end_hour", "end_minute")


def _given(name: str) -> JsonDict:
    return {"required": [name], "properties": {name: {"type": "integer"}}}


def _part_needs_month(part: str) -> JsonDict:
    return {"if": _given(part), "then": _given("month")}


# the validators' cross-field rule, stated in OpenAPI: a part needs the larger units above it
WINDOW_RULES: JsonDict = {
    "allOf": [
        {"if": _given("month"), "then": _given("year")},
        *[_part_needs_month(part) for part in _WINDOW_PARTS],
    ]
}
