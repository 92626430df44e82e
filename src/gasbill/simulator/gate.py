"""What every endpoint of the simulated platform shares: tokens, the lock, the body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request, Response

from gasbill.adapters.platform.push_models import BadBody, parse_json
from gasbill.api.platform.envelope import PlatformFailure, failed
from gasbill.api.platform.routes import answer
from gasbill.simulator.fleet import Simulator
from gasbill.simulator.platform import CtrlRefused

TOKEN_REFUSED = "token 无效或已过期，请重新登录 (the token is missing, wrong or expired)"


class Gate:
    """What every simulator endpoint shares: the lock, the token check, the body."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def call(
        self,
        request: Request,
        work: Callable[[Any], Response],
        *,
        needs_body: bool = False,
        check: Callable[[Request], None] | None = None,
    ) -> Response:
        try:
            (check or self.check_token)(request)
            raw = await request.body()
            body = parse_json(raw) if needs_body or raw.strip() else None
        except BadBody as exc:
            return failed(PlatformFailure(400, str(exc), data=0))
        except PlatformFailure as failure:
            return failed(failure)
        return await answer(lambda: self._locked(work, body))

    def check_token(self, request: Request) -> None:
        if not self.sim.tokens.valid(request.headers.get("token")):
            raise PlatformFailure(401, TOKEN_REFUSED, data=None)

    def _locked(self, work: Callable[[Any], Response], body: Any) -> Response:
        with self.sim.lock:
            try:
                return work(body)
            except CtrlRefused as refused:
                raise PlatformFailure(refused.status, refused.message, data=0) from None
