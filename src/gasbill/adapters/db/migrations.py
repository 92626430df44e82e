"""Alembic, driven from code: `gasbill db upgrade`, and the check the app makes at start.

There is no alembic.ini: the configuration is built here from the URL in
gasbill's settings and the `migrations/` folder at the top of the project.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from gasbill.adapters.db.engine import normalise_url

MIGRATIONS_DIR = Path(__file__).resolve().parents[4] / "migrations"
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s"


class DatabaseBehind(RuntimeError):
    """The database's schema is older than the code; the message says how to fix it."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("timezone", "UTC")
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(engine: sa.Engine) -> None:
    """Refuse to run on a database whose schema is behind (or ahead of) the code."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        where = "empty" if current is None else f"at revision {current}"
        raise DatabaseBehind(
            f"the database is {where}, this gasbill needs revision {head}: "
            "run `gasbill db upgrade` (with the same --config) first"
        )
