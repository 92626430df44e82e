"""The API alone, for an ASGI server's worker processes:

    uvicorn --factory gasbill.api.asgi:api_from_environment --workers 4 --no-proxy-headers

(`--no-proxy-headers`: which proxies' X-Forwarded-For is believed is gasbill's
`[staff] trusted_proxies`, not uvicorn's default of 127.0.0.1.)

Settings come from `$GASBILL_CONFIG` (or ./config.toml) and `GASBILL_*`
variables, as for every command. These processes run no scheduled jobs: run
one `gasbill serve` (or `gasbill serve --no-scheduler` elsewhere and the jobs
in one place) beside them; the inbox job bills what they store within
`[jobs.inbox] interval_seconds`.
"""

from __future__ import annotations

from fastapi import FastAPI

from gasbill.api.app import create_app
from gasbill.config import load_settings


def api_from_environment() -> FastAPI:
    """The app on the composition root (built, and closed at shutdown, by `create_app`)."""
    return create_app(load_settings())
