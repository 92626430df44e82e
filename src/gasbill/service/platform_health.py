"""How our calls to the platform's remote-control API are going, for operators.

Every call through the shared client passes `watched`, which counts the
errors by kind (`login_refused`, `unreachable`, `refused`) and remembers
whether the last login was refused: `/metrics` shows the counts and
`/health` reports *degraded* while the platform will not let us in, since
no command can reach a meter then.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from gasbill.service.ports import (
    AddReply,
    CommandPlatform,
    OutgoingCommand,
    PlatformCommandRecord,
    PlatformError,
    PlatformRefused,
)

T = TypeVar("T")
log = logging.getLogger("gasbill.platform")

KINDS = ("login_refused", "unreachable", "refused")


def error_kind(exc: PlatformError) -> str:
    """`login_refused` (our credentials), `refused` (the platform said no), `unreachable`."""
    if isinstance(exc, PlatformRefused):
        if exc.login or exc.token_refused:
            return "login_refused"
        return "refused"
    return "unreachable"


def describe_error(exc: PlatformError) -> str:
    """A platform error in a clerk's words, with the platform's own message."""
    kind = error_kind(exc)
    if kind == "login_refused":
        return (
            f"the platform refused our login ({exc.message}); check [platform] login_name/password"
        )
    if kind == "refused":
        return f"refused by the platform: {exc.message}"
    return f"the platform could not be reached: {exc.message}"


@dataclass(slots=True)
class PlatformHealth:
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    calls: int = 0
    login_refused: str | None = None  # the refusal, while the last login attempt failed
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_ok_at: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def ok(self) -> None:
        with self._lock:
            self.calls += 1
            if self.login_refused is not None:
                log.info("the platform lets us in again")
            self.login_refused = None
            self.last_ok_at = datetime.now(UTC)

    def failed(self, exc: PlatformError) -> None:
        kind = error_kind(exc)
        with self._lock:
            self.calls += 1
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.last_error = f"{kind}: {exc}"[:500]
            self.last_error_at = datetime.now(UTC)
            if kind == "login_refused":
                if self.login_refused is None:
                    log.error(
                        "%s: no command reaches a meter until it is fixed", describe_error(exc)
                    )
                self.login_refused = str(exc)
            elif kind == "refused":
                self.login_refused = None  # we were let in: only the request was refused

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": self.calls,
                "errors": dict(self.errors),
                "login_refused": self.login_refused,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
                "last_ok_at": self.last_ok_at.isoformat() if self.last_ok_at else None,
            }


class Watched:
    """The platform client, each call's success or error counted on a PlatformHealth."""

    def __init__(self, client: CommandPlatform, health: PlatformHealth) -> None:
        self.client = client
        self.health = health

    def _run(self, call: Callable[[], T]) -> T:
        try:
            result = call()
        except PlatformError as exc:
            self.health.failed(exc)
            raise
        self.health.ok()
        return result

    def add_commands(self, commands: Sequence[OutgoingCommand]) -> Sequence[AddReply]:
        return self._run(lambda: self.client.add_commands(commands))

    def find_by_define_no(self, ctrl_define_no: str) -> Sequence[PlatformCommandRecord]:
        return self._run(lambda: self.client.find_by_define_no(ctrl_define_no))

    def get_model(self, ctrl_id: int) -> PlatformCommandRecord | None:
        return self._run(lambda: self.client.get_model(ctrl_id))

    def cancel(self, ctrl_id: int) -> int:
        return self._run(lambda: self.client.cancel(ctrl_id))

    def retry(self, ctrl_id: int) -> int:
        return self._run(lambda: self.client.retry(ctrl_id))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)  # login, get_list, close …

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            close()


def watched(client: CommandPlatform, health: PlatformHealth) -> CommandPlatform:
    return client if isinstance(client, Watched) else Watched(client, health)
