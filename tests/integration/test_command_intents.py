"""Commands stored as domain data (`command.intent`, `meter_prepay_state.ladder`): every
command comes back as it went in, and migration f5a6b7c8d9e0 converts the rows written
before it in the wire's shape, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.tables.commands import Command, MeterPrepayState
from gasbill.adapters.platform.codec import Codec
from gasbill.domain.commands import (
    CtrlType,
    GetChargeState,
    LadderPrice,
    OpenAccount,
    RemoteCharge,
    SetCumulant,
    SetPrice,
    SetRemain,
    SetValveOff,
)
from gasbill.domain.money import Money, Price, Volume
from tests.conftest import PG_ENV
from tests.integration.billing_helpers import make_account

BEFORE = "e4f5a6b7c8d9"
CODEC = Codec(ZoneInfo("Asia/Shanghai"))  # writes the wire's shape, as the outbox once stored
LADDER = LadderPrice(
    tuple(Price(Decimal(p)) for p in ("3.20", "3.84", "4.80", "4.80", "4.80")),
    tuple(Volume(Decimal(v)) for v in ("300", "600", "600", "600")),
    date(2025, 1, 1),
    12,
)
INTENTS = [
    SetPrice(LADDER),
    OpenAccount.of(Money(Decimal("100.00")), Money(Decimal("100.00")), LADDER),
    RemoteCharge(Money(Decimal("50.5")), Money(Decimal("150.5")), 2),
    SetRemain(Money(Decimal("44.78"))),
    SetCumulant(Volume(Decimal("1234.567")), Volume(Decimal("1200"))),
    SetValveOff(),
    GetChargeState(),
]
T0 = datetime(2025, 3, 1, 2, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of its own (PostgreSQL: a schema of its own), at `BEFORE`."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, BEFORE)
        yield url
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    schema = "migration_intents"
    admin = sa.create_engine(normalise_url(base))
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    scoped = sa.make_url(normalise_url(base)).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    url = scoped.render_as_string(hide_password=False)
    upgrade(url, BEFORE)
    yield url
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def _insert_old_rows(url: str) -> list[str]:
    """One command of each kind as the outbox wrote them before (a queued top-up's data "",
    a dispatched one's filled in), and a confirmed ladder; their ctrl_data texts."""
    engine = sa.create_engine(normalise_url(url))
    texts = [CODEC.encode(intent)[1] for intent in INTENTS] + [""]
    kinds = [intent.ctrl_type for intent in INTENTS] + [CtrlType.REMOTE_CHARGE]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":  # no meter rows: the foreign keys wait
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        for n, (kind, text) in enumerate(zip(kinds, texts, strict=True), start=1):
            conn.execute(
                sa.text(
                    "INSERT INTO command (define_no, company_no, meter_id, meter_comm_no,"
                    " ctrl_type, ctrl_data, status, outcome, feedback, reason, actor, attempts,"
                    " last_error, next_attempt_at, timeout_at, created_at) VALUES (:d, '1001',"
                    " :m, '12345678901234', :t, :c, 'queued', '', '', '', 'test', 0, '', :at,"
                    " :at, :at)"
                ),
                {"d": f"gb-{n}", "m": n, "t": str(kind), "c": text, "at": T0},
            )
        conn.execute(
            sa.text(
                "INSERT INTO meter_prepay_state (meter_id, confirmed_times, confirmed_total_fen,"
                " ladder, updated_at) VALUES (1, 0, 0, :l, :at)"
            ),
            {"l": CODEC.encode(SetPrice(LADDER))[1], "at": T0},
        )
    engine.dispose()
    return texts


def test_the_migration_turns_wire_text_into_domain_commands(old_database):
    texts = _insert_old_rows(old_database)
    upgrade(old_database)
    engine = make_engine(old_database)
    with Session(engine) as session:
        stored = session.exec(select(Command).order_by(col(Command.id))).all()
        prepay = session.get(MeterPrepayState, 1)
        assert [c.intent for c in stored] == [*INTENTS, None]  # a queued top-up: none yet
        assert prepay is not None and prepay.ladder == LADDER
        raw = session.execute(sa.text("SELECT intent FROM command ORDER BY id")).scalars().all()
    engine.dispose()
    assert json.loads(raw[0])["command"] == "SetPrice"
    assert json.loads(raw[3]) == {"command": "SetRemain", "value": "44.78"}  # digits as sent

    upgrade_down(old_database)  # and back: the wire's text again
    engine = sa.create_engine(normalise_url(old_database))
    with engine.connect() as conn:
        back = conn.execute(sa.text("SELECT ctrl_data FROM command ORDER BY id")).scalars().all()
        ladder = conn.execute(sa.text("SELECT ladder FROM meter_prepay_state")).scalar_one()
    engine.dispose()
    assert [_exact(t) for t in back] == [_exact(t) for t in texts]
    assert _exact(ladder) == _exact(texts[0])


def test_every_kind_of_command_comes_back_from_the_outbox_as_it_went_in(engine, uow, catalog):
    make_account(uow, catalog)
    with Session(engine) as session:
        meter_id = session.execute(sa.text("SELECT id FROM meter")).scalar_one()
        for n, intent in enumerate(INTENTS, start=1):
            session.add(
                Command(
                    define_no=f"gb-{n}",
                    company_no="1001",
                    meter_id=meter_id,
                    meter_comm_no="12345678901234",
                    ctrl_type=str(intent.ctrl_type),
                    intent=intent,
                    status="queued",
                    next_attempt_at=T0,
                    timeout_at=T0,
                )
            )
        session.commit()
    with Session(engine) as session:
        stored = session.exec(select(Command).order_by(col(Command.id))).all()
        assert [c.intent for c in stored] == INTENTS


def upgrade_down(url: str) -> None:
    from alembic import command

    from gasbill.adapters.db.migrations import alembic_config

    command.downgrade(alembic_config(url), BEFORE)


def _exact(text: str) -> object:
    return json.loads(text, parse_float=Decimal, parse_int=Decimal) if text else text
