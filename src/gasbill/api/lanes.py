"""FastAPI with lanes: requests to a few hot endpoints go straight to their handlers.

Pushes are the city-scale hot path (a night's frozen readings arrive within
the hour, one reading per request), and FastAPI's per-request machinery —
its middleware stack, route matching over the whole staff API, dependency
solving, two exit stacks — costs more CPU than the push handler itself. A
lane hands such a request to the very handler function its route is
registered with (the route stays, for OpenAPI and for apps without lanes);
a lane handler must answer every outcome itself, failures included.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]


class LaneApp(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lanes: dict[str, Handler] = {}  # POST path -> handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            handler = self.lanes.get(scope["path"])
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)
