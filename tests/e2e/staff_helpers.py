"""The staff API tests' fixtures: an app on a migrated database, a clock the tests move,
a user of each role, and the requests they make (conftest.py provides the fixtures)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from gasbill.adapters.db.tables.billing import BillingException
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.app import create_app
from gasbill.api.security import Argon2Passwords
from gasbill.config import DatabaseSettings, Settings, StaffSettings, TariffSettings
from gasbill.service.staff import add_user
from tests.conftest import ROOT

API = "/api/v1"

PASSWORD = "correct horse battery"
ROLES = ("clerk", "auditor", "admin")
METER = "12345678901234"


@dataclass
class FakeClock:
    now: datetime = datetime(2025, 3, 1, 8, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fast_passwords() -> Argon2Passwords:
    """argon2id still, with cheap parameters so tests log in quickly."""
    return Argon2Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


def staff_settings(db_url: str, **staff: int) -> Settings:
    limits = {"token_ttl_minutes": 60, "login_max_failures": 3, "login_window_minutes": 10}
    return Settings(
        database=DatabaseSettings(url=db_url),
        tariffs=TariffSettings(dir=ROOT / "tariffs"),
        staff=StaffSettings(**{**limits, **staff}),
    )


def make_users(uow: UnitOfWork, passwords: Argon2Passwords) -> dict[str, int]:
    """One user per role, named after it; their ids by role."""
    ids = {}
    for role in ROLES:
        user = add_user(
            uow, username=role, password=PASSWORD, role=role, passwords=passwords, actor="setup"
        )
        assert user.id is not None
        ids[role] = user.id
    return ids


def account_body(customer_id: int, **overrides: object) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "number": "A0001",
        "company_no": "1001",
        "billing_mode": "system",
        "tariff_id": "beijing-residential",
        "opened_on": "2025-01-01",
        "meter_comm_no": METER,
        "opening_register": "12.5",
        "persons": 3,
        **overrides,
    }


def make_target_user(engine, passwords) -> int:
    user = add_user(
        UnitOfWork(engine),
        username="target",
        password=PASSWORD,
        role="clerk",
        passwords=passwords,
        actor="setup",
    )
    return user.id


def add_exception(engine, account_id: int) -> int:
    uow = UnitOfWork(engine)
    with uow:
        row = BillingException(
            kind="register_backwards",
            account_id=account_id,
            company_no="1001",
            meter_comm_no=METER,
            detail="the register went from 40.000 to 12.000 m³",
        )
        uow.session.add(row)
        uow.flush()
        uow.commit()
        return row.id


# -- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def passwords():
    return fast_passwords()


@pytest.fixture
def user_ids(engine, passwords):
    return make_users(UnitOfWork(engine), passwords)


@pytest.fixture
def app(db_url, engine, catalog, clock, passwords, user_ids):
    return create_app(
        staff_settings(db_url), engine=engine, catalog=catalog, clock=clock, passwords=passwords
    )


@pytest.fixture
def client(app):
    with TestClient(app) as test_client:
        yield test_client


def login(client, username, password=PASSWORD):
    return client.post(f"{API}/auth/login", json={"username": username, "password": password})


def auth(client, username, password=PASSWORD):
    response = login(client, username, password)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def clerk(client):
    return auth(client, "clerk")


@pytest.fixture
def auditor(client):
    return auth(client, "auditor")


@pytest.fixture
def admin(client):
    return auth(client, "admin")


def key():
    return {"Idempotency-Key": str(uuid.uuid4())}


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)
    return body["error"]


def open_account(client, headers, **overrides):
    customer = client.post(f"{API}/customers", json={"name": "王芳"}, headers=headers)
    assert customer.status_code == 201, customer.text
    body = account_body(customer.json()["id"], **overrides)
    account = client.post(f"{API}/accounts", json=body, headers=headers)
    assert account.status_code == 201, account.text
    return account.json()
