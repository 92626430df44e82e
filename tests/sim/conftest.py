"""The simulation's tests need a fresh migrated database per seed, not per test."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from gasbill.adapters.db.engine import make_engine
from tests.db_fixtures import _empty_postgres


@pytest.fixture
def db_url_factory(
    request: pytest.FixtureRequest, db_url: str, tmp_path: Path, sqlite_template: Path
) -> Callable[[], str]:
    """A new empty database at each call (SQLite: a copy; PostgreSQL: every table emptied)."""

    def fresh() -> str:
        if db_url.startswith("sqlite"):
            path = tmp_path / "seed.db"
            shutil.copyfile(sqlite_template, path)
            return f"sqlite:///{path}"
        engine = make_engine(db_url)
        _empty_postgres(engine)
        engine.dispose()
        return db_url

    return fresh
