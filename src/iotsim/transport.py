"""Calling an ASGI app in this process through a synchronous httpx client.

`SimulatorTransport(sim)` lets our real `PlatformClient` talk to the
simulator without a socket: `PlatformClient(settings, zone=..., transport=
SimulatorTransport(sim))`. The simulator's reply faults become what a client
sees over the network: a lost reply an `httpx.ReadError`, a slow reply an
`httpx.ReadTimeout` when it is later than the request's read timeout (and
the reply itself otherwise), without waiting. `AsgiTransport(app)` does the
same for any ASGI app, e.g. our own server as the pusher's target.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
from starlette.types import ASGIApp, Message

from iotsim.api import create_simulator_app
from iotsim.faults import LostReply, SlowReply
from iotsim.fleet import Simulator

Reply = tuple[int, list[tuple[bytes, bytes]], bytes]


def _fault_in(exc: BaseException) -> LostReply | SlowReply | None:
    if isinstance(exc, LostReply | SlowReply):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _fault_in(inner)
            if found is not None:
                return found
    return None


class AsgiTransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        reply: dict[str, Any] = {}
        try:
            self._run(request, body, reply)
        except BaseException as exc:
            fault = _fault_in(exc)
            if isinstance(fault, LostReply):
                raise httpx.ReadError("the platform's reply was lost", request=request) from None
            if isinstance(fault, SlowReply):
                read = request.extensions.get("timeout", {}).get("read")
                if read is not None and fault.delay_ms >= read * 1000:
                    raise httpx.ReadTimeout(
                        "the platform replied too late", request=request
                    ) from None
                reply = {"status": fault.status, "headers": fault.headers, "body": [fault.body]}
            elif "status" not in reply or not isinstance(exc, Exception):
                raise
        return httpx.Response(
            reply["status"],
            headers=reply["headers"],
            content=b"".join(reply["body"]),
            request=request,
        )

    def _run(self, request: httpx.Request, body: bytes, reply: dict[str, Any]) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            anyio.run(self._call, request, body, reply)
            return
        with ThreadPoolExecutor(1) as pool:  # called from async code: run beside it
            pool.submit(anyio.run, self._call, request, body, reply).result()

    async def _call(self, request: httpx.Request, body: bytes, reply: dict[str, Any]) -> None:
        url = request.url
        raw_path, _, query = url.raw_path.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(raw_path.decode("ascii")),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "server": (url.host, url.port or 80),
            "client": ("127.0.0.1", 50_000),
        }
        delivered = False

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply["status"] = message["status"]
                reply["headers"] = list(message.get("headers", []))
                reply["body"] = []
            elif message["type"] == "http.response.body":
                reply["body"].append(message.get("body", b""))

        await self.app(scope, receive, send)


class SimulatorTransport(AsgiTransport):
    """The simulated platform, in this process, as an httpx transport."""

    def __init__(self, sim: Simulator) -> None:
        super().__init__(create_simulator_app(sim, in_process=True))
