"""What every endpoint of the simulated platform shares: the credentials, the lock, the body.

Remote control takes the login's `token` header (§2.2.2); the data API the
`company_no` and `data_api_key` headers (§2.2.1). A refusal is a `failed`
envelope; anything unforeseen a 500 with one, and a line in the log.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import Request, Response

from iotsim.envelope import Refused, failure
from iotsim.fleet import Simulator
from iotsim.jsonwire import NotJson, read_json

log = logging.getLogger(__name__)
MEDIA_TYPE = "application/json; charset=utf-8"
TOKEN_REFUSED = "token 无效或已过期，请重新登录 (the token is missing, wrong or expired)"
KEY_REFUSED = "company_no or data_api_key is missing or wrong"

Work = Callable[[Any], str]


def reply(text: str, status: int = 200) -> Response:
    return Response(text, status_code=status, media_type=MEDIA_TYPE)


def refused(exc: Refused) -> Response:
    return reply(failure(exc), exc.status)


class Gate:
    """What every simulator endpoint shares: the lock, the credential check, the body."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    async def call(
        self,
        request: Request,
        work: Work,
        *,
        needs_body: bool = False,
        check: Callable[[Request], None] | None = None,
    ) -> Response:
        """Check the caller, read the body, run `work(body)` under the world's lock."""
        try:
            (check or self.check_token)(request)
            raw = await request.body()
            body = read_json(raw) if needs_body or raw.strip() else None
        except NotJson as exc:
            return refused(Refused(400, f"the body: {exc}"))
        except Refused as exc:
            return refused(exc)
        try:
            return reply(await anyio.to_thread.run_sync(self._locked, work, body))
        except Refused as exc:
            return refused(exc)
        except Exception:
            log.exception("the simulated platform failed on %s", request.url.path)
            return refused(Refused(500, "服务器内部错误 (the simulated platform failed)"))

    def check_token(self, request: Request) -> None:
        if not self.sim.tokens.valid(request.headers.get("token")):
            raise Refused(401, TOKEN_REFUSED, data=None)

    def check_key(self, request: Request) -> None:
        company = request.headers.get("company_no", "")
        key = request.headers.get("data_api_key", "")
        settings = self.sim.settings
        expected = settings.data_api_key if company == settings.company_no else ""
        if not key or not expected or not hmac.compare_digest(key.encode(), expected.encode()):
            raise Refused(401, KEY_REFUSED, data=None)

    def _locked(self, work: Work, body: Any) -> str:
        with self.sim.lock:
            return work(body)
