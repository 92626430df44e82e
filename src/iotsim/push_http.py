"""The pusher's HTTP client for a real socket: one kept-alive HTTP/1.1 connection.

`gasbill simulate` pushes every reading, alarm, event and command report one
request at a time (the vendor's document: one reading per push), thousands a
simulated day. Through httpx each push cost the simulator about 3 ms of CPU,
more than the world it simulates; `http.client` on one kept-alive connection
does the same exchange for a fraction of it. Only the little the pusher uses:
`post` and a response's `status_code` and `text`. A connection the application
closed while idle is noticed before it is reused (as httpx does), and one
closed just as a push went out on it (no answer at all) is replaced and the
push sent once more; any other failure is an `httpx.TransportError`, which the
pusher takes for "the application is down". Pushes sent at once (`[push] concurrency`)
each go on a connection of their sending thread's own.
"""

from __future__ import annotations

import http.client
import select
import threading
from typing import NamedTuple
from urllib.parse import urlsplit

import httpx

# what a connection closed under a request looks like (before any answer came)
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class PushResponse(NamedTuple):
    status_code: int
    text: str


class KeepAliveClient:
    def __init__(self, base_url: str, *, timeout: float = 10) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"push to a plain http:// URL, not {base_url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.timeout = timeout
        self._local = threading.local()  # each sending thread's connection
        self._all: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()  # guards _all

    @property
    def _connection(self) -> http.client.HTTPConnection | None:
        return getattr(self._local, "connection", None)

    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> PushResponse:
        """POST `content` to `url` (relative to the base URL)."""
        reused = self._connection is not None
        try:
            return self._exchange(url, content, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            if not (reused and isinstance(exc, STALE)):
                raise httpx.TransportError(f"push to {self.host}:{self.port}: {exc!r}") from exc
        # the server closed the kept-alive connection as the push went out (its idle
        # timeout): nothing was answered, so once more on a fresh one
        try:
            return self._exchange(url, content, headers)
        except (OSError, http.client.HTTPException) as exc:
            self._drop()
            raise httpx.TransportError(f"push to {self.host}:{self.port}: {exc!r}") from exc

    def _exchange(self, url: str, content: bytes, headers: dict[str, str]) -> PushResponse:
        connection = self._open()
        connection.request("POST", self.prefix + url.lstrip("/"), content, headers)
        response = connection.getresponse()
        body = response.read()
        if response.will_close:
            self._drop()
        return PushResponse(response.status, body.decode("utf-8", "replace"))

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, set()
        for connection in connections:
            connection.close()
        self._local = threading.local()

    def _open(self) -> http.client.HTTPConnection:
        connection = self._connection
        if connection is not None and connection.sock is not None:
            readable, _, _ = select.select([connection.sock], [], [], 0)
            if not readable:
                return connection  # idle and open: nothing from the server since
            self._drop()  # closed by the server while idle (or stray bytes): a fresh one
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self._local.connection = connection
        with self._lock:
            self._all.add(connection)
        return connection

    def _drop(self) -> None:
        connection = self._connection
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._lock:
                self._all.discard(connection)
