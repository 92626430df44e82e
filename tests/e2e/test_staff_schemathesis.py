"""Schemathesis over the whole app's OpenAPI, as each staff role, with every check (issue 11).

The OpenAPI document must tell the truth: for inputs generated from it (and
inputs that break it) no 5xx, statuses, headers and bodies as documented,
invalid input refused. One app per database, built when the module is
collected: SQLite always, PostgreSQL when GASBILL_TEST_DATABASE_URL is set.
The staff-user operations (which may deactivate, demote or reset the very users
whose tokens a run holds) are each called with tokens of users made for that
case alone, so every case still meets a working login. By default a bounded run (the examples
and fuzzing phases, one example per operation and role);
GASBILL_SCHEMATHESIS_EXAMPLES sets the examples per operation and adds the
coverage phase, which generates every case the schema defines (the longer
run: minutes on a shared machine).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import UTC, datetime

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.app import create_app
from gasbill.service import credentials, staff
from gasbill.service.accounts import NotFound
from gasbill.service.reconciliation import AsOfError, parse_as_of
from gasbill.service.staff import add_user
from tests.conftest import PG_ENV
from tests.e2e.schemathesis_cases import headers_broken_on_purpose
from tests.e2e.staff_helpers import PASSWORD, ROLES, fast_passwords, staff_settings

LONG = os.environ.get("GASBILL_SCHEMATHESIS_EXAMPLES")
EXAMPLES = settings(
    max_examples=int(LONG or "1"),
    derandomize=not LONG,  # the bounded run in make test: the same cases every time
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
PASSWORDS = fast_passwords()


class Staff:
    """An app on one database, a user and a token per role."""

    def __init__(self, url: str) -> None:
        upgrade(url)
        self.engine = make_engine(url)
        settings = staff_settings(
            url, login_max_failures=10**6, login_max_failures_per_client=10**6
        )
        self.app = create_app(settings, engine=self.engine, passwords=PASSWORDS)
        self.schema = schemathesis.openapi.from_asgi("/openapi.json", self.app)
        if not LONG:
            self.schema.config.phases.update(phases=["examples", "fuzzing"])
        self.headers: dict[str, dict[str, str]] = {}
        self.requests = dict.fromkeys(ROLES, 0)
        self.failures = dict.fromkeys(ROLES, 0)
        self.made = 0
        self.run = uuid.uuid4().hex[:8]

    def tokens(self, prefix: str = "st") -> dict[str, dict[str, str]]:
        """Log each role in, its user made ready first: made when missing, and put back as
        the run needs it when an earlier run's fuzzing reset, demoted or deactivated it
        (PostgreSQL keeps its rows from run to run until a test empties it)."""
        headers: dict[str, dict[str, str]] = {}
        with TestClient(self.app) as client:
            for role in ROLES:
                username = f"{prefix}-{role}"
                self._ready(username, role)
                body = {"username": username, "password": PASSWORD}
                reply = client.post("/api/v1/auth/login", json=body)
                assert reply.status_code == 200, reply.text
                headers[role] = {"Authorization": f"Bearer {reply.json()['access_token']}"}
        if prefix == "st":
            self.headers = headers
        return headers

    def _ready(self, username: str, role: str) -> None:
        try:
            user = credentials.find_user(UnitOfWork(self.engine), username)
        except NotFound:
            add_user(
                UnitOfWork(self.engine),
                username=username,
                password=PASSWORD,
                role=role,
                passwords=PASSWORDS,
                actor="schemathesis",
            )
            return
        assert user.id is not None
        credentials.reset_password(
            UnitOfWork(self.engine), user.id, password=PASSWORD, passwords=PASSWORDS, actor="st"
        )
        if not user.active:
            staff.activate_user(UnitOfWork(self.engine), user.id, actor="st")
        if user.role != role:
            staff.change_role(UnitOfWork(self.engine), user.id, role, actor="st")

    def headers_for(self, case: schemathesis.Case) -> dict[str, dict[str, str]]:
        if not case.path.startswith("/api/v1/users"):
            return self.headers
        self.made += 1
        # users this case alone may change, named afresh in every run
        return self.tokens(prefix=f"u{self.run}-{self.made}")


def _beyond_what_a_schema_says(case: schemathesis.Case) -> list:
    """Checks a case may skip: the report's `as_of` has a documented form, but that it names a
    real calendar day (not 2026-02-30) and not the future is a rule JSON Schema cannot state,
    so its 422 for such a value is not "valid data rejected"."""
    as_of = (case.query or {}).get("as_of") if case.path == "/api/v1/reconciliation" else None
    if not isinstance(as_of, str) or not as_of.strip():
        return []
    try:
        parse_as_of(as_of, zone="Asia/Shanghai", now=datetime.now(UTC))
    except AsOfError:
        return [positive_data_acceptance]
    return []


def exercise(staff: Staff, case: schemathesis.Case) -> None:
    """The case as each role; every check on each answer."""
    tokens = staff.headers_for(case)
    try:
        for role in ROLES:
            headers = dict(case.headers or {})
            if not headers_broken_on_purpose(case):  # else the 401 the case expects
                headers |= tokens[role]
            staff.requests[role] += 1
            try:
                case.call_and_validate(
                    headers=headers, excluded_checks=_beyond_what_a_schema_says(case)
                )
            except Exception:
                staff.failures[role] += 1
                raise
    finally:
        if tokens is not staff.headers:
            staff.tokens()  # a user operation may have reached the run's own users: put back


sqlite = Staff(f"sqlite:///{tempfile.mkdtemp()}/staff-schemathesis.db")


@pytest.fixture(scope="module")
def sqlite_tokens():
    yield sqlite.tokens()
    print(f"\nschemathesis staff sqlite: requests {sqlite.requests} failures {sqlite.failures}")


@sqlite.schema.parametrize()
@EXAMPLES
def test_the_staff_api_keeps_its_openapi_on_sqlite(case, sqlite_tokens):
    exercise(sqlite, case)


postgres_url = os.environ.get(PG_ENV)
if postgres_url:
    postgres = Staff(postgres_url)

    @pytest.fixture(scope="module")
    def postgres_tokens():
        yield postgres.tokens()
        print(
            f"\nschemathesis staff postgresql: requests {postgres.requests} "
            f"failures {postgres.failures}"
        )

    @postgres.schema.parametrize()
    @EXAMPLES
    def test_the_staff_api_keeps_its_openapi_on_postgresql(case, postgres_tokens):
        exercise(postgres, case)

else:

    def test_the_staff_api_keeps_its_openapi_on_postgresql():
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
