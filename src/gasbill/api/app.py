"""The app: `create_app(settings, services=…)` on the one composition root (gasbill.bootstrap).

The staff API under /api/v1 and the platform-facing API (spec §4, §5.3) under /api/Data
and /api/Conf, each with its own error shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from gasbill.adapters.db.migrations import ensure_current
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.api import errors, operations
from gasbill.api.deps import AppContext, Clock
from gasbill.api.edge import EdgeGuard, truthful_openapi
from gasbill.api.lanes import LaneApp
from gasbill.api.platform import PlatformContext, install_platform_api
from gasbill.api.policy import access_for, check_covers
from gasbill.api.security import Argon2Passwords, HmacTokens
from gasbill.api.staff import install_staff_api
from gasbill.bootstrap import Services, bootstrap
from gasbill.config import ConfigError, Settings
from gasbill.service.ports import CommandPlatform
from gasbill.service.staff import LoginLimits, Passwords
from gasbill.web import install_web


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    engine: Engine | None = None,
    catalog: TariffCatalog | None = None,
    clock: Clock | None = None,
    passwords: Passwords | None = None,
    on_frozen_stored: Callable[[], None] | None = None,
    platform: CommandPlatform | None = None,
) -> FastAPI:
    """The app on `services` (or on what `bootstrap` builds from these settings and overrides).

    Refuses (ConfigError) a placeholder secret outside the demo, and at
    startup a database whose schema is not current (DatabaseBehind). What it
    bootstrapped itself it also closes.
    """
    problem = settings.app.insecure_secret()
    if problem:
        raise ConfigError(problem)
    owns_services = services is None
    world = services or bootstrap(
        settings, engine=engine, catalog=catalog, clock=clock, platform=platform
    )
    if on_frozen_stored is not None:
        world.wakers.append(on_frozen_stored)
    ctx = _app_context(settings, world, passwords or Argon2Passwords())
    app = LaneApp(
        title="gasbill",
        summary="Prepaid gas billing: the staff API",
        description="Log in at POST /api/v1/auth/login and send the token as "
        "`Authorization: Bearer <token>`. Errors answer "
        '`{"error": {"code", "message", "details"}}`.',
        version="0.1.0",
        lifespan=_lifespan(world, owns_services),
        docs_url=None,  # served by gasbill.web from the package's own Swagger UI files
    )
    app.state.gasbill = ctx
    errors.install(app)
    app.add_middleware(EdgeGuard)  # size, depth and NUL before routing and authentication
    platform_context = _platform_context(settings, world, ctx)
    app.state.platform = platform_context  # its push counters, for /metrics
    install_platform_api(app, platform_context)
    app.include_router(operations.router)
    install_staff_api(app)  # after the platform's: pushes are the hot path, matched first
    install_web(app)  # the staff pages under /ui, and /docs without a CDN
    check_covers(app.routes)
    truthful_openapi(
        app,
        lambda method, path: getattr(access_for(method, path), "public", False),
        settings.money.limits(),
    )
    return app


def _app_context(settings: Settings, world: Services, passwords: Passwords) -> AppContext:
    """What the staff API's dependencies read: the settings and the world's services."""
    return AppContext(
        settings=settings,
        engine=world.engine,
        catalog=world.catalog,
        codec=world.codec,
        clock=world.clock,
        passwords=passwords,
        tokens=HmacTokens(settings.app.secret_key.get_secret_value()),
        limits=LoginLimits(
            settings.staff.login_max_failures,
            timedelta(minutes=settings.staff.login_window_minutes),
            settings.staff.login_max_failures_per_client,
        ),
        commands=world.command_policy,
        platform=world.lazy_platform(),
        decide=world.decide,
        services=world,
    )


def _platform_context(settings: Settings, world: Services, ctx: AppContext) -> PlatformContext:
    """What the platform-facing API's routes read."""
    return PlatformContext(
        engine=world.engine,
        push=settings.push,
        platform_zone=ZoneInfo(settings.app.platform_timezone),
        clock=ctx.clock,
        on_frozen_stored=world.frozen_stored,
        commands=ctx.commands,
    )


def _lifespan(
    world: Services, owns_services: bool
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """At startup, refuse a database whose schema is not current; at shutdown, close what
    the app bootstrapped itself."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        ensure_current(world.engine)
        try:
            yield
        finally:
            if owns_services:
                world.close()

    return lifespan
