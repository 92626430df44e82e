"""End-to-end tests use the integration tests' migrated databases (SQLite, and PostgreSQL
when GASBILL_TEST_DATABASE_URL is set); the staff API's tests, its app, clock and users."""

from tests.e2e.staff_helpers import (  # noqa: F401
    admin,
    app,
    auditor,
    clerk,
    client,
    clock,
    passwords,
    user_ids,
)
from tests.integration.conftest import (  # noqa: F401
    catalog,
    db_url,
    engine,
    postgres_migrated,
    sqlite_template,
    uow,
)
