"""What every job works with: the `JobContext` (one per process), and a skipped run."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.tariffs.catalog import TariffCatalog
from gasbill.config import Settings
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.poller import DataSource
from gasbill.service.ports import CommandPlatform

if TYPE_CHECKING:
    from gasbill.bootstrap import Services

Clock = Callable[[], datetime]
Decide = Callable[[UnitOfWork, int, datetime], object]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Skipped:
    """A run that did nothing because a part it needs is not there (yet)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Skipped({self.reason!r})"


@dataclass(eq=False)
class JobContext:
    """The ports every job works with; one per process, shared by its jobs."""

    settings: Settings
    engine: Engine
    catalog: TariffCatalog
    codec: Codec
    platform_factory: Callable[[], CommandPlatform]
    clock: Clock
    uow_factory: Callable[[], UnitOfWork]
    command_policy: CommandPolicy
    notifier: Any | None = None
    data_source_factory: Callable[[], DataSource] | None = None
    _made: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    decide: Decide | None = None
    services: Services | None = None
    owns_services: bool = False  # built by `build`: closed with this context

    @classmethod
    def of(cls, services: Services) -> JobContext:
        """The jobs' view of the composition root (gasbill.bootstrap)."""
        return cls(
            settings=services.settings,
            engine=services.engine,
            catalog=services.catalog,
            codec=services.codec,
            platform_factory=services.platform,
            clock=services.clock,
            uow_factory=services.uow,
            command_policy=services.command_policy,
            notifier=services.notifier,
            data_source_factory=services.data_source_factory,
            decide=services.decide,
            services=services,
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        engine: Engine,
        *,
        catalog: TariffCatalog | None = None,
        codec: Codec | None = None,
        platform_factory: Callable[[], CommandPlatform] | None = None,
        clock: Clock | None = None,
        uow_factory: Callable[[], UnitOfWork] | None = None,
        command_policy: CommandPolicy | None = None,
        notifier: Any | None = None,
        data_source_factory: Callable[[], DataSource] | None = None,
    ) -> JobContext:
        """`bootstrap` on this engine, every port replaceable (tests)."""
        from gasbill.bootstrap import bootstrap

        services = bootstrap(
            settings,
            engine=engine,
            catalog=catalog,
            codec=codec,
            platform_factory=platform_factory,
            clock=clock,
            command_policy=command_policy,
            notifier=notifier,
            data_source_factory=data_source_factory,
        )
        context = cls.of(services)
        context.owns_services = True
        if uow_factory is not None:
            context.uow_factory = uow_factory
        return context

    def _once(self, name: str, factory: Callable[[], Any]) -> Any:
        if self.services is not None:
            return self.services.once(name, factory)
        with self._lock:
            if name not in self._made:
                self._made[name] = factory()
            return self._made[name]

    def platform(self) -> CommandPlatform:
        """The platform client, made on first use and kept (it holds the login token)."""
        if self.services is not None:
            return self.services.platform()
        client: CommandPlatform = self._once("platform", self.platform_factory)
        return client

    def data_source(self) -> DataSource | None:
        if self.services is not None:
            return self.services.data_source()
        if self.data_source_factory is None:
            return None
        source: DataSource = self._once("data_source", self.data_source_factory)
        return source

    def close(self) -> None:
        """Close the clients this context made (those of its services: by their owner)."""
        with self._lock:
            made, self._made = self._made, {}
        for thing in made.values():
            close = getattr(thing, "close", None)
            if callable(close):
                close()
        if self.owns_services and self.services is not None:
            self.services.close()
