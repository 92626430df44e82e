"""The webhook notifier: what it sends, and which failures are worth retrying."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import httpx
import pytest
import respx

from gasbill.adapters.notify import LogNotifier, WebhookNotifier, build_notifier
from gasbill.config import NotifySettings
from gasbill.service.notify import DeliveryFailed, WarningNotice

URL = "https://hooks.example.test/gas"
NOTICE = WarningNotice(
    id=42,
    account_id=7,
    account_number="A7",
    customer_name="王芳",
    customer_phone="13800000000",
    level="low",
    reason="by_amount",
    balance_fen=1607,
    balance_source="prepaid",
    days_left="6.1",
    message="balance 16.07 yuan at or below 20.00, about 6.1 days of gas left",
    at=datetime(2025, 1, 14, 2, tzinfo=UTC),
    attempt=1,
)


@respx.mock
def test_a_warning_is_posted_as_json_with_its_idempotency_key():
    route = respx.post(URL).mock(return_value=httpx.Response(204))
    WebhookNotifier(URL).deliver(NOTICE)
    request = route.calls.last.request
    assert request.headers["Idempotency-Key"] == "gasbill-warning-42"
    body = json.loads(request.content)
    assert body["id"] == 42 and body["kind"] == "low_balance_warning"
    assert body["balance_fen"] == 1607 and body["days_left"] == "6.1"
    assert body["customer_name"] == "王芳" and body["at"] == "2025-01-14T02:00:00+00:00"


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (503, True), (408, True), (429, True), (400, False), (404, False), (301, False)],
)
@respx.mock
def test_server_errors_are_retried_and_refusals_are_final(status, retryable):
    respx.post(URL).mock(return_value=httpx.Response(status, text="nope"))
    with pytest.raises(DeliveryFailed) as failed:
        WebhookNotifier(URL).deliver(NOTICE)
    assert failed.value.retryable is retryable
    assert str(status) in str(failed.value)


@pytest.mark.parametrize(
    "error", [httpx.ConnectTimeout("slow"), httpx.ReadTimeout("slow"), httpx.ConnectError("down")]
)
@respx.mock
def test_timeouts_and_transport_errors_are_retried(error):
    respx.post(URL).mock(side_effect=error)
    with pytest.raises(DeliveryFailed) as failed:
        WebhookNotifier(URL, timeout=0.5).deliver(NOTICE)
    assert failed.value.retryable


def test_the_settings_pick_the_notifier():
    assert isinstance(build_notifier(NotifySettings()), LogNotifier)
    webhook = build_notifier(NotifySettings(channel="webhook", webhook_url=URL))
    assert isinstance(webhook, WebhookNotifier) and webhook.url == URL
    with pytest.raises(ValueError, match="webhook_url is empty"):
        NotifySettings(channel="webhook")


def test_the_log_notifier_writes_one_json_line(caplog):
    with caplog.at_level(logging.WARNING, logger="gasbill.notify"):
        LogNotifier().deliver(NOTICE)
    (record,) = caplog.records
    line = json.loads(record.getMessage())
    assert line["event"] == "low_balance_warning" and line["id"] == 42
    assert record.warning["account_number"] == "A7"
