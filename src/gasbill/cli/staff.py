"""What the staff commands share: a migrated database, and who acts from a terminal."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Engine

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.adapters.db.repositories.audit import with_audit_key
from gasbill.cli.options import fail
from gasbill.config import Settings


def terminal_actor() -> str:
    """The audit log's actor for a command run from a terminal: `cli:<login>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@contextmanager
def current_engine(settings: Settings) -> Iterator[Engine]:
    """An engine on a database at the code's schema revision; disposed afterwards."""
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    engine = with_audit_key(engine, settings.app.audit_key.get_secret_value())
    try:
        try:
            ensure_current(engine)
        except DatabaseBehind as exc:
            fail(str(exc))
        yield engine
    finally:
        engine.dispose()
