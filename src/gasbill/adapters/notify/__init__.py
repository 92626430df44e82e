"""Notifiers: how a low-balance warning reaches the customer (a log line, a webhook)."""

from __future__ import annotations

import httpx

from gasbill.adapters.notify.log import LogNotifier
from gasbill.adapters.notify.webhook import WebhookNotifier
from gasbill.config import NotifySettings
from gasbill.service.notify import Notifier

__all__ = ["LogNotifier", "WebhookNotifier", "build_notifier"]


def build_notifier(settings: NotifySettings, *, client: httpx.Client | None = None) -> Notifier:
    """The notifier [notify] asks for; `client` lets a caller share or fake the HTTP client."""
    if settings.channel == "webhook":
        return WebhookNotifier(
            settings.webhook_url, timeout=float(settings.timeout_seconds), client=client
        )
    return LogNotifier()
