"""`gasbill serve`: the API in one process, on a database at the code's revision."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn
from sqlalchemy.exc import OperationalError

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.migrations import DatabaseBehind, ensure_current
from gasbill.api.app import create_app
from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.config import ConfigError


def serve_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Serve the staff API (docs at /docs); refuses a stale database or a placeholder secret."""
    settings = settings_from(config)
    problem = settings.app.insecure_secret()
    if problem:
        fail(problem)
    engine = make_engine(settings.database.url, echo=settings.database.echo)
    try:
        ensure_current(engine)
        app = create_app(settings, engine=engine)
    except (DatabaseBehind, ConfigError) as exc:
        engine.dispose()
        fail(str(exc))
    except OperationalError as exc:
        engine.dispose()
        fail(f"cannot reach the database: {exc.orig}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        engine.dispose()
