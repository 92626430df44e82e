"""The simulated platform over HTTP: login (§2.2.2), remote control (§4.2), queries (§3).

`create_simulator_app(sim)` serves what the vendor's platform serves, in its
envelope: `api/Conf/Account/Login` (MD5 of the password, expiring tokens),
every `api/Conf/CtrlData/*` endpoint, and the data queries of query mode
(`api/Data/...`) with the key headers. A call with a missing, wrong or
expired token gets HTTP 401 and a `failed` envelope that names the token.
Beside them, under `/_sim/`, the simulator's own control API (`control.py`):
no part of the vendor's platform, for whoever drives the simulated world.

Reply faults (`lost_reply`, `slow_reply`) act after the platform has applied
the request. Over a real socket a lost reply is a connection closed after
the status line (the client sees a transport error), a slow one a delay;
in-process (`in_process=True`, as `SimulatorTransport` builds it) they are
raised as `LostReply` / `SlowReply` for the transport to turn into httpx
errors without waiting.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iotsim.api_ctrl import install_ctrl_routes
from iotsim.api_data import install_data_routes
from iotsim.control import install_control_routes
from iotsim.envelope import Refused, success
from iotsim.faults import LostReply, ReplyFate, SlowReply
from iotsim.fleet import Simulator
from iotsim.gate import Gate

log = logging.getLogger(__name__)


class ReplyFaults:
    """ASGI middleware: the platform applies the request, then its reply is lost or late."""

    def __init__(self, app: ASGIApp, sim: Simulator, in_process: bool) -> None:
        self.app = app
        self.sim = sim
        self.in_process = in_process

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        fate = None
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/api/"):
            fate = self.sim.faults.reply_fate()
        if fate is None:
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []

        async def keep(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, keep)
        start = next(m for m in messages if m["type"] == "http.response.start")
        delay_ms = self.sim.faults.settings.slow_reply_ms
        if fate is ReplyFate.LOST:
            if self.in_process:
                raise LostReply(str(scope.get("path")))
            log.info("fault lost_reply: dropping the reply to %s", scope.get("path"))
            await send(start)  # the status line goes out, the body never: the server hangs up
            return
        if self.in_process:
            body = b"".join(
                m.get("body", b"") for m in messages if m["type"] == "http.response.body"
            )
            raise SlowReply(delay_ms, start["status"], list(start.get("headers", [])), body)
        await anyio.sleep(delay_ms / 1000)
        for message in messages:
            await send(message)


def net_time(instant: datetime) -> str:
    """An instant as .NET writes a DateTimeOffset: seven fractional digits and the offset."""
    text = instant.isoformat(timespec="microseconds")
    return text[:26] + "0" + text[26:]


def password_matches(given: str, password: str) -> bool:
    """`pwd` is the password "做 MD5加密" (§2.2.2): its hex MD5 of the UTF-8 text, either case."""
    digest = hashlib.md5(password.encode("utf-8"), usedforsecurity=False).hexdigest()
    return secrets.compare_digest(given.strip().lower().encode(), digest.encode())


def create_simulator_app(sim: Simulator, *, in_process: bool = False) -> FastAPI:
    settings = sim.settings
    tokens = sim.tokens
    gate = Gate(sim)
    app = FastAPI(
        title="iotmeterv1 platform simulator",
        description="A stand-in for the vendor's platform and a fleet of simulated meters.",
    )
    app.add_middleware(ReplyFaults, sim=sim, in_process=in_process)
    app.state.simulator = sim

    @app.post("/api/Conf/Account/Login", summary="Log in with the MD5 of the password (§2.2.2)")
    async def login(request: Request) -> Response:
        def work(_: Any) -> str:
            name = request.query_params.get("loginName", "")
            pwd = request.query_params.get("pwd", "")
            password = settings.password.get_secret_value()
            if name != settings.login_name or not password_matches(pwd, password):
                raise Refused(401, "用户名或密码错误 (wrong login name or password)", data=None)
            token, expires = tokens.issue()
            return success(
                {
                    "token": token,
                    "expiration": net_time(expires.astimezone(sim.zone)),
                    "admin_id": 1,
                    "company_no": settings.company_no,
                    "admin_name": settings.login_name,
                    "admin_remark": "simulator",
                    "admin_ext_data": "{}",
                }
            )

        return await gate.call(request, work, check=lambda _: None)

    install_ctrl_routes(app, gate)
    install_data_routes(app, gate)
    install_control_routes(app, sim)
    return app
