"""Query mode: a client for a platform's data endpoints (spec §3.1, §4.4, §4.6, §4.8).

Key-authenticated like pushes. Transport errors, timeouts and 5xx are
retryable; a `failed` envelope or a 4xx is final, with the platform's
Message kept. `page` gives the rows as the platform sent them; `records`, the
poller's `DataSource`, validates each as a push is and gives the service's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from gasbill.adapters.platform.client import PlatformRefused, PlatformRetryable
from gasbill.adapters.platform.jsontext import dumps_exact, loads_exact
from gasbill.adapters.platform.push_models import AlarmIn, EventIn, MeterDataIn, describe
from gasbill.service.poller import PolledRow, Unreadable

PATHS = {
    "reading": "api/Data/MeterData/GetHistoryList2",
    "alarm": "api/Data/DeviceAlarm/GetList2",
    "event": "api/Data/DeviceEvent/GetList2",
}
MODELS: dict[str, type[MeterDataIn] | type[AlarmIn] | type[EventIn]] = {
    "reading": MeterDataIn,
    "alarm": AlarmIn,
    "event": EventIn,
}


@dataclass(frozen=True, slots=True)
class DataPage:
    total: int
    rows: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RecordPage:
    total: int
    rows: list[PolledRow]


def polled(model: type[MeterDataIn] | type[AlarmIn] | type[EventIn], raw: Any) -> PolledRow:
    """A row validated as a push is: the service's record, or why it is not one."""
    try:
        return model.model_validate(raw).record()
    except ValidationError as exc:
        return Unreadable(describe(exc))


class DataClient:
    def __init__(self, http: httpx.Client, company_no: str, data_api_key: str) -> None:
        self._http = http
        self._headers = {
            "company_no": company_no,
            "data_api_key": data_api_key,
            "content-type": "application/json",
        }

    @classmethod
    def connect(
        cls, base_url: str, company_no: str, data_api_key: str, *, timeout_seconds: int = 30
    ) -> DataClient:
        return cls(
            httpx.Client(base_url=base_url, timeout=timeout_seconds), company_no, data_api_key
        )

    def close(self) -> None:
        self._http.close()

    def records(
        self, kind: str, query: dict[str, Any], *, startrow: int, rowcount: int
    ) -> RecordPage:
        """A page of `kind` (reading, alarm, event) as the service's records (the poller's)."""
        page = self.page(kind, query, startrow=startrow, rowcount=rowcount)
        model = MODELS[kind]
        return RecordPage(page.total, [polled(model, raw) for raw in page.rows])

    def page(self, kind: str, query: dict[str, Any], *, startrow: int, rowcount: int) -> DataPage:
        path = PATHS[kind]
        try:
            reply = self._http.post(
                "/" + path,
                params={"startrow": startrow, "rowcount": rowcount},
                content=dumps_exact(query),
                headers=self._headers,
            )
        except httpx.HTTPError as exc:
            raise PlatformRetryable(f"{path}: {exc}", path=path) from exc
        if reply.status_code >= 500:
            raise PlatformRetryable(
                f"{path}: HTTP {reply.status_code}", status=reply.status_code, path=path
            )
        try:
            body = loads_exact(reply.content)
        except ValueError:
            raise PlatformRetryable(
                f"{path}: the reply is not JSON", status=reply.status_code, path=path
            ) from None
        if not isinstance(body, dict) or body.get("State") != "success":
            message = body.get("Message", "") if isinstance(body, dict) else ""
            raise PlatformRefused(
                f"{path}: {message or 'failed'}", status=reply.status_code, path=path
            )
        rows = body.get("Data") or []
        return DataPage(int(body.get("Totalcount", len(rows))), list(rows))
