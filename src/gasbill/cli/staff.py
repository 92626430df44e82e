"""What the staff commands share: a migrated database, and who acts from a terminal."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.bootstrap import Services, bootstrap
from gasbill.cli.options import fail
from gasbill.config import Settings


def terminal_actor() -> str:
    """The audit log's actor for a command run from a terminal: `cli:<login>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@contextmanager
def current_services(settings: Settings) -> Iterator[Services]:
    """The composition root on a database at the code's schema revision; closed afterwards."""
    services = bootstrap(settings)
    try:
        try:
            ensure_current(services.engine)
        except DatabaseBehind as exc:
            fail(str(exc))
        yield services
    finally:
        services.close()


@contextmanager
def current_engine(settings: Settings) -> Iterator[Engine]:
    """`current_services`' engine, for commands that need only the database."""
    with current_services(settings) as services:
        yield services.engine
