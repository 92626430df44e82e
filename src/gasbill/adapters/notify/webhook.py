"""A notifier that POSTs each warning as JSON to a webhook (an SMS gateway, a CRM, …).

The body is `WarningNotice.as_json()`; the `Idempotency-Key` header is
`gasbill-warning-<id>`, the same on every attempt, so a receiver can drop a
repeat (delivery is at least once). A 2xx answer is success. Timeouts,
connection errors, 5xx, 408 and 429 are retried later; any other answer
(4xx, a redirect) is final: trying again would get the same.
"""

from __future__ import annotations

import httpx

from gasbill.service.notify import DeliveryFailed
from gasbill.service.ports import WarningNotice

RETRYABLE_STATUS = frozenset({408, 425, 429})


class WebhookNotifier:
    def __init__(
        self, url: str, *, timeout: float = 10.0, client: httpx.Client | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook url must be http(s), not {url!r}")
        self.url = url
        self.timeout = httpx.Timeout(timeout)
        self._client = client
        self._own_client = client is None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._client

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()
            self._client = None

    def deliver(self, warning: WarningNotice) -> None:
        try:
            response = self.client.post(
                self.url,
                json=warning.as_json(),
                headers={"Idempotency-Key": f"gasbill-warning-{warning.id}"},
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise DeliveryFailed(f"webhook timed out: {exc!r}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryFailed(f"webhook unreachable: {exc!r}", retryable=True) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"webhook answered {status}: {response.text[:200]}"
        retryable = status >= 500 or status in RETRYABLE_STATUS
        raise DeliveryFailed(detail, retryable=retryable)
