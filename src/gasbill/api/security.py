"""Passwords (argon2id) and opaque bearer tokens kept only as HMAC-SHA256(secret, token).

A token is 32 random bytes, shown to its holder once; the database keeps its
keyed digest, so a leaked table cannot be replayed and changing the secret
signs everyone out. Login rate limiting lives in `service.staff.login`, over
the attempts this module's callers record.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache, cached_property
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_BYTES = 32


class Argon2Passwords:
    """argon2id with the library's recommended parameters (RFC 9106, low-memory profile)."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            # With no user, check against a throwaway hash: an unknown username
            # costs as much time as a wrong password and reveals nothing.
            self._hasher.verify(password_hash or self._dummy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    @cached_property
    def _dummy(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))


class HmacTokens:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("the token secret cannot be empty")
        self._key = secret.encode("utf-8")

    def new(self) -> tuple[str, str]:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        return token, self.digest(token)

    def digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode("utf-8"), hashlib.sha256).hexdigest()


class TrustedProxies:
    """The reverse proxies whose X-Forwarded-For is believed; none unless configured.

    Behind them, the client is the right-most address in X-Forwarded-For that
    is not itself a trusted proxy: each proxy appends the address it saw, so
    whatever a client wrote further left is never believed.
    """

    def __init__(self, networks: tuple[IPv4Network | IPv6Network, ...] = ()) -> None:
        self.networks = networks

    @staticmethod
    @cache
    def of(configured: tuple[str, ...]) -> TrustedProxies:
        return TrustedProxies(tuple(ip_network(item, strict=False) for item in configured))

    def trusts(self, address: str) -> bool:
        try:
            ip = ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, peer: str, forwarded: list[str]) -> str:
        if not self.trusts(peer):
            return peer
        hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
        current = peer
        for hop in reversed(hops):
            try:
                ip_address(hop)
            except ValueError:
                return current  # not an address: stop at the last proxy that forwarded it
            current = hop
            if not self.trusts(hop):
                return hop
        return current
