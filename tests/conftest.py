"""Shared fixtures. Database tests run on SQLite always, and on PostgreSQL when
GASBILL_TEST_DATABASE_URL is set (CI sets it); otherwise they show as skipped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "GASBILL_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for an empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    yield url


@pytest.fixture
def tariffs_dir() -> Path:
    return ROOT / "tariffs"
