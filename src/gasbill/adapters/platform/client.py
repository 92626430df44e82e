"""The platform's remote-control API (spec §3.2, §5.2): login, token, CtrlData/*.

Success is read from the envelope's `State`, never from the HTTP status.
Errors come in two kinds:

- `PlatformRetryable`: transport errors, timeouts, 5xx (and 408, 429), or a
  reply we cannot read. The outcome is unknown: after an `Add`, look the
  command up by `ctrl_define_no` before sending it again.
- `PlatformRefused`: a `failed` envelope or a 4xx; the platform's `Message`
  and the HTTP status are kept.

The token is reused until `token_renew_margin_seconds` before its
`expiration`; a call refused for its token (HTTP 401, or a `failed` envelope
whose message speaks of the token or login) logs in again once and is sent
once more, never in a loop. Synchronous: the dispatcher runs it in a worker
thread; several threads may share one client.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from gasbill.adapters.platform.codec import Codec
from gasbill.adapters.platform.jsontext import dumps_exact, loads_exact
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.adapters.platform.wire import (
    BatchOutcome,
    BatchResultItem,
    CtrlDataFilter,
    CtrlDataPage,
    CtrlDataRecord,
    Envelope,
    LoginReply,
    NewCtrlData,
    parse_envelope,
)
from gasbill.service.ports import OutgoingCommand

# the errors the service declares for its platform port, raised here (and re-exported)
from gasbill.service.ports import PlatformError as PlatformError
from gasbill.service.ports import PlatformRefused as PlatformRefused
from gasbill.service.ports import PlatformRetryable as PlatformRetryable

log = logging.getLogger(__name__)

LOGIN_PATH = "api/Conf/Account/Login"
CTRL = "api/Conf/CtrlData/"
RETRYABLE_STATUSES = frozenset({408, 429})
TOKEN_MARKERS = ("token", "令牌", "登录", "登陆", "未授权", "unauthorized", "unauthorised")
FIND_PAGE = 100
FIND_MAX_PAGES = 20


class _TokenRefused(Exception):
    def __init__(self, refusal: PlatformRefused) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def password_md5(password: str, *, upper: bool = False) -> str:
    """The 32-character hex MD5 of the UTF-8 password (spec §3.2)."""
    digest = hashlib.md5(password.encode("utf-8"), usedforsecurity=False).hexdigest()
    return digest.upper() if upper else digest


def _is_token_refusal(status: int, envelope: Envelope | None) -> bool:
    if status == 401:
        return True
    if envelope is None or envelope.ok:
        return False
    message = envelope.Message.lower()
    return any(marker in message for marker in TOKEN_MARKERS)


class PlatformClient:
    def __init__(
        self,
        settings: PlatformSettings,
        *,
        zone: ZoneInfo,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        self.zone = zone
        self.codec = Codec(zone)
        self._clock = clock or (lambda: datetime.now(UTC))
        connect = float(settings.connect_timeout_seconds)
        read = float(settings.read_timeout_seconds)
        self._http = httpx.Client(
            base_url=settings.base_url,
            transport=transport,
            timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        )
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at: datetime | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PlatformClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- login and token --------------------------------------------------------------
    def login(self) -> LoginReply:
        """Log in (spec §3.2) and keep the token; refused credentials raise PlatformRefused."""
        params = {
            "loginName": self.settings.login_name,
            "pwd": password_md5(
                self.settings.password.get_secret_value(),
                upper=self.settings.password_md5_upper,
            ),
        }
        envelope = self._send(LOGIN_PATH, token=None, params=params, body=None, login=True)
        try:
            reply = LoginReply.model_validate(envelope.Data)
        except ValueError:
            raise PlatformRetryable("the login reply holds no token", path=LOGIN_PATH) from None
        if not reply.token:
            raise PlatformRetryable("the login reply holds an empty token", path=LOGIN_PATH)
        with self._lock:
            self._token = reply.token
            self._expires_at = reply.expires_at(self.zone)
        log.info("logged in to the platform as %s", self.settings.login_name)
        return reply

    def _valid_token(self) -> str | None:
        if self._token is None:
            return None
        if self._expires_at is not None:
            margin = timedelta(seconds=self.settings.token_renew_margin_seconds)
            if self._clock() >= self._expires_at - margin:
                return None
        return self._token

    def _current_token(self) -> str:
        token = self._valid_token()
        if token is None:
            self.login()
            token = self._token
        assert token is not None
        return token

    def _renewed_token(self, stale: str) -> str:
        if self._token is not None and self._token != stale:
            return self._token  # another thread renewed it meanwhile
        self.login()
        assert self._token is not None
        return self._token

    # -- transport --------------------------------------------------------------------
    def _call(
        self, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Envelope:
        token = self._current_token()
        try:
            return self._send(path, token=token, params=params, body=body)
        except _TokenRefused:
            log.info("the platform refused the token on %s; logging in again once", path)
        token = self._renewed_token(token)
        try:
            return self._send(path, token=token, params=params, body=body)
        except _TokenRefused as again:
            raise again.refusal from None

    def _send(
        self,
        path: str,
        *,
        token: str | None,
        params: dict[str, Any] | None,
        body: Any,
        login: bool = False,
    ) -> Envelope:
        headers = {"content-type": "application/json; charset=utf-8"}
        if token is not None:
            headers["token"] = token
        content = b"" if body is None else dumps_exact(body).encode("utf-8")
        try:
            response = self._http.post(path, params=params, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise PlatformRetryable(f"timed out: {type(exc).__name__}", path=path) from exc
        except httpx.TransportError as exc:
            raise PlatformRetryable(f"transport error: {exc!r}", path=path) from exc
        status = response.status_code
        try:
            envelope = parse_envelope(loads_exact(response.content))
        except ValueError:
            envelope = None
        if envelope is not None and envelope.ok:
            return envelope
        message = envelope.Message if envelope is not None else response.text[:500]
        data = envelope.Data if envelope is not None else None
        if status >= 500 or status in RETRYABLE_STATUSES:
            raise PlatformRetryable(message or "server error", status=status, data=data, path=path)
        if not login and _is_token_refusal(status, envelope):
            refusal = PlatformRefused(
                message or "token refused", status=status, data=data, path=path, token_refused=True
            )
            raise _TokenRefused(refusal)
        if envelope is not None or 400 <= status < 500:
            raise PlatformRefused(
                message or "refused", status=status, data=data, path=path, login=login
            )
        raise PlatformRetryable(f"unreadable reply: {message!r}", status=status, path=path)

    # -- single commands (4.2.1–4.2.7, 4.2.11) -----------------------------------------
    def add(self, command: NewCtrlData) -> int:
        """Create a command; its new `ctrl_id`."""
        path = CTRL + "Add"
        data = self._call(path, body=command.body()).Data
        ctrl_id = _int_or_none(data)
        if ctrl_id is None or ctrl_id <= 0:
            raise PlatformRetryable(f"Add succeeded without a ctrl_id: {data!r}", path=path)
        return ctrl_id

    def update(self, record: CtrlDataRecord) -> int:
        return self._id_call(CTRL + "Update", body=record.body())

    def delete(self, ctrl_id: int) -> int:
        return self._id_call(f"{CTRL}Delete/{int(ctrl_id)}")

    def cancel(self, ctrl_id: int) -> int:
        return self._id_call(f"{CTRL}Cancel/{int(ctrl_id)}")

    def retry(self, ctrl_id: int) -> int:
        return self._id_call(f"{CTRL}Retry/{int(ctrl_id)}")

    def _id_call(self, path: str, *, body: Any = None) -> int:
        data = self._call(path, body=body).Data
        ctrl_id = _int_or_none(data)
        if ctrl_id is None or ctrl_id <= 0:
            raise PlatformRefused(f"the platform returned {data!r}, not a ctrl_id", path=path)
        return ctrl_id

    def get_model(self, ctrl_id: int) -> CtrlDataRecord | None:
        path = f"{CTRL}GetModel/{int(ctrl_id)}"
        data = self._call(path).Data
        return None if data is None else _record(data, path)

    def get_detail(self, ctrl_id: int) -> str:
        """The platform's description of a command, lines joined by `</br>`."""
        data = self._call(f"{CTRL}GetDetial/{int(ctrl_id)}").Data  # sic: "Detial"
        return "" if data is None else str(data)

    def get_list(
        self,
        where: CtrlDataFilter | None = None,
        *,
        startrow: int | None = None,
        rowcount: int | None = None,
    ) -> CtrlDataPage:
        path = CTRL + "GetList"
        params = {
            k: v for k, v in (("startrow", startrow), ("rowcount", rowcount)) if v is not None
        }
        envelope = self._call(path, body=(where or CtrlDataFilter()).body(), params=params)
        data = envelope.Data if envelope.Data is not None else []
        if not isinstance(data, list):
            raise PlatformRetryable(
                f"GetList returned {type(data).__name__}, not a list", path=path
            )
        items = [_record(item, path) for item in data]
        return CtrlDataPage(
            items,
            totalcount=envelope.Totalcount if envelope.Totalcount is not None else len(items),
            startrow=envelope.Startrow if envelope.Startrow is not None else (startrow or 0),
            rowcount=envelope.Rowcount if envelope.Rowcount is not None else len(items),
        )

    def find_by_define_no(self, ctrl_define_no: str) -> list[CtrlDataRecord]:
        """Every record with exactly this `ctrl_define_no` (our command id)."""
        where = CtrlDataFilter(ctrl_define_no=ctrl_define_no)
        found: list[CtrlDataRecord] = []
        start = 0
        for _ in range(FIND_MAX_PAGES):
            page = self.get_list(where, startrow=start, rowcount=FIND_PAGE)
            found += [r for r in page.items if r.ctrl_define_no == ctrl_define_no]
            start += len(page.items)
            if not page.items or start >= page.totalcount:
                break
        return found

    # -- batches (4.2.8–4.2.10): results matched to the request by position ---------------
    def add_commands(self, commands: Sequence[OutgoingCommand]) -> list[BatchOutcome]:
        """The outbox's port: domain commands encoded here and sent in one `AddMulti`."""
        return self.add_multi([self.codec.outgoing(c) for c in commands])

    def add_multi(self, commands: Sequence[NewCtrlData]) -> list[BatchOutcome]:
        expected = [(None, c.target_comm_no) for c in commands]
        return self._batch("AddMulti", [c.body() for c in commands], expected)

    def update_multi(self, records: Sequence[CtrlDataRecord]) -> list[BatchOutcome]:
        expected = [(r.ctrl_id, r.target_comm_no) for r in records]
        return self._batch("UpdateMulti", [r.body() for r in records], expected)

    def delete_multi(self, ctrl_ids: Sequence[int]) -> list[BatchOutcome]:
        return self._id_batch("DeleteMulti", ctrl_ids)

    def cancel_multi(self, ctrl_ids: Sequence[int]) -> list[BatchOutcome]:
        return self._id_batch("CancelMulti", ctrl_ids)

    def retry_multi(self, ctrl_ids: Sequence[int]) -> list[BatchOutcome]:
        return self._id_batch("RetryMulti", ctrl_ids)

    def _id_batch(self, name: str, ctrl_ids: Sequence[int]) -> list[BatchOutcome]:
        ids = [int(i) for i in ctrl_ids]
        return self._batch(name, ids, [(i, None) for i in ids])

    def _batch(
        self, name: str, body: list[Any], expected: Sequence[tuple[int | None, str | None]]
    ) -> list[BatchOutcome]:
        if not body:
            return []
        path = CTRL + name
        data = self._call(path, body=body).Data
        if not isinstance(data, list):
            raise PlatformRetryable(f"{name} returned {type(data).__name__}, not a list", path=path)
        outcomes = []
        for position, (ctrl_id, target) in enumerate(expected):
            if position >= len(data):
                outcomes.append(BatchOutcome(position, None, False, "no reply item"))
                continue
            try:
                item = BatchResultItem.model_validate(data[position])
            except ValueError:
                outcomes.append(BatchOutcome(position, None, False, "unreadable reply item"))
                continue
            problem = ""
            if target is not None and (item.target_comm_no or "") != target:
                problem = f"reply item names {item.target_comm_no!r}, not {target!r}"
            elif ctrl_id is not None and item.ctrl_id not in (0, ctrl_id):
                problem = f"reply item names ctrl_id {item.ctrl_id}, not {ctrl_id}"
            outcomes.append(BatchOutcome(position, item, not problem, problem))
        if len(data) != len(expected):
            log.warning("%s: %d items sent, %d in the reply", name, len(expected), len(data))
        return outcomes


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _record(data: Any, path: str) -> CtrlDataRecord:
    try:
        return CtrlDataRecord.model_validate(data)
    except ValueError as exc:
        raise PlatformRetryable(f"unreadable command record: {exc}", path=path) from None
