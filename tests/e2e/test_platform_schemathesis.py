"""Schemathesis over the OpenAPI of the platform-facing endpoints, with every check.

No input makes a 5xx, every failure is the platform's envelope with a message, and the
answers keep the OpenAPI: what the schema allows is accepted, what it refuses is refused.
The one rule no schema can state is relative to the clock (a push dated more than a day
ahead is refused: the meter's clock is wrong); the app here lives after every date the
schema allows (2200), and tests/e2e/test_platform_push.py holds that rule.

The schema is loaded when the module is collected, so each database gets an app of its
own here: SQLite always, PostgreSQL when GASBILL_TEST_DATABASE_URL is set. By default a
bounded run (examples and fuzzing, few examples); GASBILL_SCHEMATHESIS_EXAMPLES sets the
examples per operation and adds the coverage phase (the longer run).
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.api.lanes import LaneApp
from gasbill.api.platform import PlatformContext, install_platform_api
from tests.conftest import PG_ENV
from tests.e2e.schemathesis_cases import headers_broken_on_purpose

AFTER_EVERY_DATE = datetime(2200, 1, 1, tzinfo=UTC)  # the time pattern ends in 2199
KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
LONG = os.environ.get("GASBILL_SCHEMATHESIS_EXAMPLES")
EXAMPLES = settings(
    max_examples=int(LONG or "10"),
    derandomize=not LONG,  # the bounded run in make test: the same cases every time
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def platform_schema(url: str) -> schemathesis.schemas.BaseSchema:
    upgrade(url)
    app = LaneApp(title="gasbill platform interface")
    install_platform_api(
        app,
        PlatformContext(
            make_engine(url),
            PushSettings(),
            ZoneInfo("Asia/Shanghai"),
            clock=lambda: AFTER_EVERY_DATE,
        ),
    )
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    refusals = schema.config.checks.negative_data_rejection
    # a body over the size limit is refused before it is read: 413 is a refusal too
    refusals.expected_statuses = [*refusals.expected_statuses, "413"]
    if not LONG:
        schema.config.phases.update(phases=["examples", "fuzzing"])
    return schema


COUNTS = {db: {"requests": 0, "failures": 0} for db in ("sqlite", "postgresql")}


@pytest.fixture(scope="module", autouse=True)
def _report_counts():
    yield
    print(f"\nschemathesis platform: {COUNTS}")


def check(case: schemathesis.Case, db: str) -> None:
    COUNTS[db]["requests"] += 1
    try:
        _check(case)
    except Exception:
        COUNTS[db]["failures"] += 1
        raise


def _check(case: schemathesis.Case) -> None:
    if not headers_broken_on_purpose(case):
        case.headers = {**(case.headers or {}), **KEYS}  # so the case reaches validation
    response = case.call()
    case.validate_response(response)  # every check: status, schema, acceptance, refusal
    assert response.status_code < 500, response.text
    envelope = response.json()
    assert "State" in envelope, (case.method, case.path, case.path_parameters, response.text)
    assert envelope["State"] in ("success", "failed")
    if envelope["State"] == "failed":
        assert envelope["Message"]
        assert 400 <= response.status_code < 500


sqlite_schema = platform_schema(f"sqlite:///{tempfile.mkdtemp()}/schemathesis.db")


@sqlite_schema.parametrize()
@EXAMPLES
def test_no_input_makes_a_server_error_on_sqlite(case):
    check(case, "sqlite")


postgres_url = os.environ.get(PG_ENV)
if postgres_url:
    postgres_schema = platform_schema(postgres_url)

    @postgres_schema.parametrize()
    @EXAMPLES
    def test_no_input_makes_a_server_error_on_postgresql(case):
        check(case, "postgresql")

else:

    def test_no_input_makes_a_server_error_on_postgresql():
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
