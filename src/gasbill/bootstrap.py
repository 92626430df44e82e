"""The one composition root: `bootstrap(settings)` builds every shared part once.

`gasbill serve`, the uvicorn factory, every CLI command, the scheduled jobs
and the demo all start here, so they run the same world: one engine, one
unit-of-work factory, one tariff catalog, one codec, one platform client
(made on first use: it logs in and keeps the token), one clock, one decider
and one command policy. Tests and the demo replace parts by keyword.
Nothing else in gasbill makes engines or platform clients.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.engine import Engine

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.repositories.audit import with_audit_key
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.config import Settings
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.platform_health import PlatformHealth, watched
from gasbill.service.poller import DataSource
from gasbill.service.ports import (
    AddReply,
    CommandPlatform,
    OutgoingCommand,
    PlatformCommandRecord,
)

log = logging.getLogger("gasbill.bootstrap")

Clock = Callable[[], datetime]
Decide = Callable[[UnitOfWork, int, datetime], object]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Services:
    """What every door shares; built once per process by `bootstrap`."""

    settings: Settings
    engine: Engine
    catalog: TariffCatalog
    codec: Codec
    clock: Clock
    command_policy: CommandPolicy
    decide: Decide
    platform_health: PlatformHealth
    platform_factory: Callable[[], CommandPlatform]
    data_source_factory: Callable[[], DataSource] | None = None
    notifier: Any | None = None
    owns_engine: bool = True
    # called when a frozen reading is stored (wakes billing); set by whoever runs the inbox
    wakers: list[Callable[[], None]] = field(default_factory=list)
    _made: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self.engine)

    def now(self) -> datetime:
        return self.clock()

    def once(self, name: str, factory: Callable[[], Any]) -> Any:
        """`factory()` made on first use and kept (clients that hold a login or a pool)."""
        with self._lock:
            if name not in self._made:
                self._made[name] = factory()
            return self._made[name]

    def platform(self) -> CommandPlatform:
        """The remote-control client, logged in on first use and shared by every caller."""
        client: CommandPlatform = self.once("platform", self.platform_factory)
        return client

    def lazy_platform(self) -> CommandPlatform:
        """A stand-in that reaches `platform()` only when a call is made."""
        return LazyPlatform(self.platform)

    def data_source(self) -> DataSource | None:
        if self.data_source_factory is None:
            return None
        source: DataSource = self.once("data_source", self.data_source_factory)
        return source

    def frozen_stored(self) -> None:
        """A frozen reading was stored: wake whatever bills (the inbox job, a listener)."""
        for wake in list(self.wakers):
            try:
                wake()
            except Exception:  # a waker must never fail a push
                log.exception("waking billing failed")

    def close(self) -> None:
        """Close the clients made here, and the engine if it was made here."""
        with self._lock:
            made, self._made = self._made, {}
        for thing in made.values():
            close = getattr(thing, "close", None)
            if callable(close):
                close()
        if self.owns_engine:
            self.engine.dispose()


class LazyPlatform:
    """A CommandPlatform that fetches the shared client per call (nothing at start-up)."""

    def __init__(self, get: Callable[[], CommandPlatform]) -> None:
        self._get = get

    def add_commands(self, commands: Sequence[OutgoingCommand]) -> Sequence[AddReply]:
        return self._get().add_commands(commands)

    def find_by_define_no(self, ctrl_define_no: str) -> Sequence[PlatformCommandRecord]:
        return self._get().find_by_define_no(ctrl_define_no)

    def get_model(self, ctrl_id: int) -> PlatformCommandRecord | None:
        return self._get().get_model(ctrl_id)

    def cancel(self, ctrl_id: int) -> int:
        return self._get().cancel(ctrl_id)

    def retry(self, ctrl_id: int) -> int:
        return self._get().retry(ctrl_id)


def bootstrap(
    settings: Settings,
    *,
    engine: Engine | None = None,
    catalog: TariffCatalog | None = None,
    clock: Clock | None = None,
    codec: Codec | None = None,
    command_policy: CommandPolicy | None = None,
    platform: CommandPlatform | None = None,
    platform_factory: Callable[[], CommandPlatform] | None = None,
    platform_transport: httpx.BaseTransport | None = None,
    data_source_factory: Callable[[], DataSource] | None = None,
    notifier: Any | None = None,
) -> Services:
    """Every shared part for these settings; any one replaced by keyword (tests, the demo).

    Nothing connects here: the engine connects on first use, the platform
    client logs in on its first call. `platform_transport` carries the
    client's HTTP elsewhere (the demo's in-process simulator).
    """
    from gasbill.jobs.wakeup import billing_notifier
    from gasbill.service.decisions import account_decider

    zone = ZoneInfo(settings.app.platform_timezone)
    now = clock or utc_now
    owns_engine = engine is None
    codec = codec or Codec(zone)
    policy = command_policy or CommandPolicy.from_settings(settings.commands)
    health = PlatformHealth()
    if platform is not None:
        given = platform
        factory: Callable[[], CommandPlatform] = lambda: watched(given, health)  # noqa: E731
    else:
        factory = platform_factory or _platform_client(
            settings, zone, now, health, platform_transport
        )
    decide = account_decider(settings, policy=policy)
    policy = replace(policy, decide=decide)  # decisions when a top-up or an opening ends
    engine = with_audit_key(  # audit entries sealed with this installation's key
        engine or make_engine(settings.database.url, echo=settings.database.echo),
        settings.app.audit_key.get_secret_value(),
    )
    notifier_of_billing = billing_notifier(engine)  # other processes bill: NOTIFY them
    services = Services(
        settings=settings,
        engine=engine,
        catalog=catalog or TariffCatalog(settings.tariffs.dir, settings.app.timezone),
        codec=codec,
        clock=now,
        command_policy=policy,
        decide=decide,
        platform_health=health,
        platform_factory=factory,
        data_source_factory=data_source_factory or _data_client(settings),
        notifier=notifier,
        owns_engine=owns_engine,
    )
    if notifier_of_billing is not None:
        services.wakers.append(notifier_of_billing)
    return services


def _platform_client(
    settings: Settings,
    zone: ZoneInfo,
    clock: Clock,
    health: PlatformHealth,
    transport: httpx.BaseTransport | None,
) -> Callable[[], CommandPlatform]:
    def connect() -> CommandPlatform:
        from gasbill.adapters.platform.client import PlatformClient

        client = PlatformClient(settings.platform, zone=zone, clock=clock, transport=transport)
        return watched(client, health)

    return connect


def _data_client(settings: Settings) -> Callable[[], DataSource] | None:
    query = settings.jobs.query_poll
    if not query.base_url:
        return None
    company_no = settings.platform.company_no
    key = query.data_api_key.get_secret_value() or settings.push.keys.get(company_no, "")

    def connect() -> DataSource:
        from gasbill.adapters.platform.data_client import DataClient

        return DataClient.connect(
            query.base_url,
            company_no,
            key,
            timeout_seconds=int(settings.platform.read_timeout_seconds),
        )

    return connect
