"""Login tokens of the simulated platform (§2.2.2): issued at login, refused once expired."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

TOKEN_BYTES = 192  # 384 hex digits, as long as the login sample's token (§2.2.2)


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Tokens:
    """Login tokens with an expiry on the simulated or the wall clock."""

    def __init__(self, lifetime: timedelta, now: Callable[[], datetime]) -> None:
        self.lifetime = lifetime
        self.now = now
        self._expiry: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def issue(self) -> tuple[str, datetime]:
        token = secrets.token_hex(TOKEN_BYTES).upper()
        now = self.now()
        expires = now + self.lifetime
        with self._lock:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
            self._expiry[token] = expires
        return token, expires

    def valid(self, token: str | None) -> bool:
        if not token:
            return False
        with self._lock:
            expires = self._expiry.get(token)
        return expires is not None and self.now() < expires
