"""commands stored as domain data: command.intent replaces the wire's ctrl_data

Revision ID: f5a6b7c8d9e0
Revises: e4f5a6b7c8d9
Create Date: 2026-12-04 11:00:00+00:00

The outbox kept each command as the vendor's `ctrl_data` text (a top-up's
filled in at dispatch, "" until then), and a meter's confirmed ladder as the
wire's `ladder_price`. Both now hold the domain's own fields (JSON text, as
gasbill.adapters.db.intents writes them); the platform adapter writes the wire
text when a command is handed over. Existing rows are converted here: a
queued top-up's "" becomes NULL (its intent is made at dispatch).
"""

import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "f5a6b7c8d9e0"
down_revision: str | None = "e4f5a6b7c8d9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PAGE = 1000

# the wire's ctrl_type -> the domain class; frozen here as they were at this revision
KINDS = {
    "iotmeterv1.prepay.setprice": "SetPrice",
    "iotmeterv1.prepay.getprice": "GetPrice",
    "iotmeterv1.prepay.setremain": "SetRemain",
    "iotmeterv1.prepay.remotecharge": "RemoteCharge",
    "iotmeterv1.prepay.getchargestate": "GetChargeState",
    "iotmeterv1.prepay.openaccount": "OpenAccount",
    "iotmeterv1.common.setvalveon": "SetValveOn",
    "iotmeterv1.common.setvalveoff": "SetValveOff",
    "iotmeterv1.common.setcumulant": "SetCumulant",
    "iotmeterv1.common.releaseforce": "ReleaseForce",
}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _number(value: Any) -> str:
    return format(Decimal(str(value)), "f")


def _wire_number(text: str) -> str:
    return format(Decimal(text), "f")


# -- wire -> domain ------------------------------------------------------------------


def _ladder(wire: dict[str, Any], start_key: str) -> dict[str, Any]:
    return {
        "prices": [_number(wire[f"price{k}"]) for k in range(1, 6)],
        "ladders": [_number(wire[f"ladder{k}"]) for k in range(1, 5)],
        "cycle_start": str(wire[start_key])[:10],  # "YYYY-MM-DDT00:00:00", local
        "cycle_months": int(wire["cycle_month"]),
    }


def intent_text(ctrl_type: str, ctrl_data: str | None) -> str | None:
    """The domain fields of a command stored in the wire's shape (None: a queued top-up)."""
    kind = KINDS[ctrl_type.strip()]
    if kind == "RemoteCharge" and not (ctrl_data or "").strip():
        return None
    wire: dict[str, Any] = json.loads(ctrl_data or "{}", parse_float=Decimal)
    fields: dict[str, Any] = {"command": kind}
    if kind == "SetPrice":
        fields.update(_ladder(wire, "cycle_start"))
    elif kind == "OpenAccount":
        fields.update(charge=_number(wire["charge_value"]), total=_number(wire["total_value"]))
        fields.update(_ladder(wire, "cycle_start_time"))
    elif kind == "RemoteCharge":
        fields.update(
            charge=_number(wire["charge_value"]),
            total=_number(wire["total_value"]),
            times=int(wire["charge_times"]),
        )
    elif kind == "SetRemain":
        fields.update(value=_number(wire["remain_value"]))
    elif kind == "SetCumulant":
        fields.update(std_sum=_number(wire["std_sum"]), work_sum=_number(wire["work_sum"]))
    return _dumps(fields)


def ladder_text(ladder_price: str) -> str:
    return _dumps(_ladder(json.loads(ladder_price, parse_float=Decimal), "cycle_start"))


# -- domain -> wire (downgrade) --------------------------------------------------------


def _wire_ladder(fields: dict[str, Any], start_key: str, whole: bool) -> list[str]:
    parts = []
    for k in range(1, 6):
        parts.append(f'"price{k}":{_wire_number(fields["prices"][k - 1])}')
        if k <= 4:
            ladder = Decimal(fields["ladders"][k - 1])
            parts.append(f'"ladder{k}":{int(ladder) if whole else _wire_number(str(ladder))}')
    parts.append(f'"{start_key}":"{fields["cycle_start"]}T00:00:00"')
    parts.append(f'"cycle_month":{int(fields["cycle_months"])}')
    return parts


def ctrl_data_text(intent: str | None) -> str:
    if intent is None:
        return ""
    fields: dict[str, Any] = json.loads(intent)
    kind = fields["command"]
    parts: list[str] = []
    if kind == "SetPrice":
        parts = _wire_ladder(fields, "cycle_start", whole=False)
    elif kind == "OpenAccount":
        parts = [
            f'"charge_value":{_wire_number(fields["charge"])}',
            f'"total_value":{_wire_number(fields["total"])}',
            *_wire_ladder(fields, "cycle_start_time", whole=True),
        ]
    elif kind == "RemoteCharge":
        parts = [
            f'"charge_value":{_wire_number(fields["charge"])}',
            f'"total_value":{_wire_number(fields["total"])}',
            f'"charge_times":{int(fields["times"])}',
        ]
    elif kind == "SetRemain":
        parts = [f'"remain_value":{_wire_number(fields["value"])}']
    elif kind == "SetCumulant":
        parts = [
            f'"std_sum":{_wire_number(fields["std_sum"])}',
            f'"work_sum":{_wire_number(fields["work_sum"])}',
        ]
    return "{" + ",".join(parts) + "}"


def wire_ladder_text(ladder: str) -> str:
    return "{" + ",".join(_wire_ladder(json.loads(ladder), "cycle_start", whole=False)) + "}"


# -- moving the rows --------------------------------------------------------------------


def _convert(
    table: str, key: str, source: str, target: str, convert: Callable[[Any], str | None]
) -> None:
    """Every row's `target` set from its `source`, a page at a time (in key order)."""
    conn = op.get_bind()
    after: Any = None
    while True:
        where = "" if after is None else f" WHERE {key} > :after"
        rows = conn.execute(
            sa.text(f"SELECT {key}, {source} FROM {table}{where} ORDER BY {key} LIMIT {PAGE}"),
            {} if after is None else {"after": after},
        ).all()
        if not rows:
            return
        conn.execute(
            sa.text(f"UPDATE {table} SET {target} = :value WHERE {key} = :key"),
            [{"key": row[0], "value": convert(row)} for row in rows],
        )
        after = rows[-1][0]


# Columns are added and dropped in place (ALTER TABLE, SQLite >= 3.35 too), never by copying
# the table as batch mode would: `command` is referenced (meter_prepay_state.blocked_by, its
# own settles_id), and SQLite checks those references when a table is dropped.


def upgrade() -> None:
    op.add_column("command", sa.Column("intent", sa.Text(), nullable=True))
    _convert(
        "command",
        "id",
        "ctrl_type, ctrl_data",
        "intent",
        lambda row: intent_text(row[1], row[2]),
    )
    op.drop_column("command", "ctrl_data")
    _convert(
        "meter_prepay_state",
        "meter_id",
        "ladder",
        "ladder",
        lambda row: None if row[1] is None else ladder_text(row[1]),
    )


def downgrade() -> None:
    # NOT NULL needs a default to be added in place; "" is what a queued top-up held
    op.add_column("command", sa.Column("ctrl_data", sa.Text(), nullable=False, server_default=""))
    _convert("command", "id", "intent", "ctrl_data", lambda row: ctrl_data_text(row[1]))
    op.drop_column("command", "intent")
    _convert(
        "meter_prepay_state",
        "meter_id",
        "ladder",
        "ladder",
        lambda row: None if row[1] is None else wire_ladder_text(row[1]),
    )
