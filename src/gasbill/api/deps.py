"""Typed dependencies of the staff routes: the app's context, a unit of work, who calls.

Authorization is one router-level dependency, `authorize`, that looks the
matched route up in the policy table; routes never name roles themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.api.errors import ApiError, forbidden, unauthorized
from gasbill.api.policy import access_for
from gasbill.api.security import TrustedProxies
from gasbill.config import Settings

if TYPE_CHECKING:
    from gasbill.bootstrap import Services
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.payments import Decide
from gasbill.service.ports import CommandPlatform
from gasbill.service.staff import Identity, LoginLimits, Passwords, Tokens, authenticate

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class AppContext:
    """What the composition root built, shared by every request."""

    settings: Settings
    engine: Engine
    catalog: TariffCatalog
    codec: Codec  # the platform's wire format: the meters' replies read by it
    clock: Clock
    passwords: Passwords
    tokens: Tokens
    limits: LoginLimits
    commands: CommandPolicy = field(default_factory=CommandPolicy)
    # the platform's remote-control API (cancel/retry of commands); None: not reachable
    platform: CommandPlatform | None = None
    # decisions after a balance change (warnings, valve on), in the same transaction
    decide: Decide | None = None
    # the composition root's parts (gasbill.bootstrap), for the use cases that need more
    services: Services | None = None


def context(request: Request) -> AppContext:
    ctx = request.app.state.gasbill
    assert isinstance(ctx, AppContext)
    return ctx


ContextDep = Annotated[AppContext, Depends(context)]


def unit_of_work(ctx: ContextDep) -> UnitOfWork:
    return UnitOfWork(ctx.engine)


UowDep = Annotated[UnitOfWork, Depends(unit_of_work)]


def now(ctx: ContextDep) -> datetime:
    return ctx.clock()


NowDep = Annotated[datetime, Depends(now)]


def catalog(ctx: ContextDep) -> TariffCatalog:
    return ctx.catalog


CatalogDep = Annotated[TariffCatalog, Depends(catalog)]

bearer = HTTPBearer(auto_error=False, description="A token from POST /api/v1/auth/login.")


def optional_identity(
    ctx: ContextDep,
    uow: UowDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Identity | None:
    if credentials is None:
        return None
    return authenticate(uow, credentials.credentials, tokens=ctx.tokens, now=ctx.clock())


def authorize(
    request: Request, identity: Annotated[Identity | None, Depends(optional_identity)]
) -> None:
    """Let the request through only if the policy table allows the caller's role."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    access = access_for(request.method, path) if isinstance(path, str) else None
    if access is not None and access.public:
        return
    if identity is None:
        raise unauthorized()
    if access is None or not access.allows(identity.role):
        raise forbidden(f"the {identity.role} role may not {request.method} {path}")


def _known_query(route: APIRoute) -> frozenset[str]:
    """Every query parameter the route (and its dependencies) declares; kept on the route."""
    known: frozenset[str] | None = getattr(route, "_gasbill_query_names", None)
    if known is not None:
        return known

    def names(dependant: Dependant) -> Iterator[str]:
        yield from (param.alias for param in dependant.query_params)
        for sub in dependant.dependencies:
            yield from names(sub)

    known = frozenset(names(route.dependant))
    route._gasbill_query_names = known  # type: ignore[attr-defined]
    return known


def refuse_unknown_query(request: Request) -> None:
    """A query parameter the route does not know is refused, not ignored: `?ofset=50` or
    `?acount=7` must not quietly answer the first page or every account."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    unknown = sorted(set(request.query_params) - _known_query(route))
    if unknown:
        raise ApiError(
            422,
            "invalid_request",
            f"unknown query parameter(s): {', '.join(unknown)}",
            details=[
                {
                    "loc": ["query", name],
                    "message": "not a parameter of this route",
                    "type": "extra_forbidden",
                }
                for name in unknown
            ],
        )


def current_identity(
    identity: Annotated[Identity | None, Depends(optional_identity)],
) -> Identity:
    if identity is None:
        raise unauthorized()
    return identity


CurrentUser = Annotated[Identity, Depends(current_identity)]


def client_address(request: Request, ctx: ContextDep) -> str:
    """The caller's address: the peer, or behind a trusted proxy the address it forwarded."""
    peer = request.client.host if request.client else "unknown"
    proxies = TrustedProxies.of(ctx.settings.staff.trusted_proxies)
    return proxies.client(peer, request.headers.getlist("x-forwarded-for"))


ClientDep = Annotated[str, Depends(client_address)]
