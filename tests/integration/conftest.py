"""Database fixtures live in tests/db_fixtures.py, loaded for every test directory."""

from tests.db_fixtures import (  # noqa: F401  (kept importable for older imports)
    catalog,
    db_url,
    engine,
    postgres_migrated,
    sqlite_template,
    uow,
)
