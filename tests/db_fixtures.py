"""Database fixtures, loaded for every test (pyproject: -p tests.db_fixtures).

SQLite: migrate one template file per session, copy it for each test.
PostgreSQL: migrate once per session, empty every table before each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from gasbill.adapters.db import tables  # noqa: F401
from gasbill.adapters.db.engine import make_engine, normalise_url
from gasbill.adapters.db.migrations import upgrade
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.tariffs.catalog import TariffCatalog
from tests.conftest import PG_ENV, ROOT


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_migrated() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    engine = sa.create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()
    upgrade(url)
    return url


def _empty_postgres(engine: Engine) -> None:
    names = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as conn:
        # the audit log refuses TRUNCATE (a trigger); a test database may skip triggers
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_migrated: str | None,
) -> Iterator[str]:
    """The URL of a migrated, empty database."""
    if request.param == "sqlite":
        path = tmp_path / "gasbill.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if postgres_migrated is None:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    engine = make_engine(postgres_migrated)
    _empty_postgres(engine)
    engine.dispose()
    yield postgres_migrated


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def uow(engine: Engine) -> UnitOfWork:
    return UnitOfWork(engine)


@pytest.fixture(scope="session")
def catalog() -> TariffCatalog:
    return TariffCatalog(ROOT / "tariffs", "Asia/Shanghai")
