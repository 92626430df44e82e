"""A notifier that writes each warning as one structured (JSON) log line."""

from __future__ import annotations

import json
import logging

from gasbill.service.ports import WarningNotice

LOGGER = "gasbill.notify"


class LogNotifier:
    """Logs `{"event": "low_balance_warning", ...}` at WARNING on `gasbill.notify`.

    For a trial or for a log shipper that forwards the line; the warning's
    fields are also attached to the record as `warning` for structured
    handlers.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(LOGGER)

    def deliver(self, warning: WarningNotice) -> None:
        fields = warning.as_json()
        line = json.dumps(
            {"event": "low_balance_warning", **fields}, ensure_ascii=False, sort_keys=True
        )
        self.logger.warning(line, extra={"warning": fields})
