"""Faults the simulator injects, seeded and configurable by probability.

Each fault draws from its own seeded stream, so turning one on does not
shift the others, and a run is the same for the same seed and the same
calls. Probabilities are exact decimals in [0, 1], held as parts per million.

Platform replies (`lost_reply`, `slow_reply`) concern the HTTP reply only:
the platform has already applied the request. Command fates are drawn once
per command when its meter wakes, and exclude each other.
"""

from __future__ import annotations

import enum
import random
import threading
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PPM = 1_000_000

FAULTS: dict[str, str] = {
    "lost_reply": "the platform applies a request but its HTTP reply is lost (transport error)",
    "slow_reply": "the platform applies a request and replies after slow_reply_ms",
    "cmd_failed": "a command is sent and acknowledged, then fails (state 4), not applied",
    "cmd_send_failed": "a command cannot be sent (state 7), not applied",
    "cmd_error": "a command ends in another error (state 99), not applied",
    "cmd_no_answer": "a command is sent, the meter never answers: state 6 at its timeout",
    "applied_timeout": "the meter applies a command and acknowledges it (2), but the "
    "result is lost: reported timed out (6) at its timeout",
    "charge_refused": "the meter refuses a valid top-up (0xbb, reason 4)",
    "missed_wake": "a meter misses its daily wake-up (nothing sent, commands wait)",
    "batch_result_false": "an AddMulti item is created (ctrl_id > 0) but answered result "
    "false, as the vendor's own sample of §4.2.8 shows",
    "push_duplicate": "a push is delivered twice",
    "push_reorder": "a push is held back, so later pushes overtake it",
}
COMMAND_FATES = ("cmd_failed", "cmd_send_failed", "cmd_error", "cmd_no_answer", "applied_timeout")


class LostReply(Exception):
    """The platform applied the request; its reply never reaches the caller."""


class SlowReply(Exception):
    """The platform applied the request; its reply comes `delay_ms` late (in-process use)."""

    def __init__(self, delay_ms: int, status: int, headers: list[tuple[bytes, bytes]], body: bytes):
        super().__init__(f"reply delayed by {delay_ms} ms")
        self.delay_ms = delay_ms
        self.status = status
        self.headers = headers
        self.body = body


class ReplyFate(enum.Enum):
    LOST = "lost"
    SLOW = "slow"


class FaultSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    lost_reply: Decimal = Decimal(0)
    slow_reply: Decimal = Decimal(0)
    cmd_failed: Decimal = Decimal(0)
    cmd_send_failed: Decimal = Decimal(0)
    cmd_error: Decimal = Decimal(0)
    cmd_no_answer: Decimal = Decimal(0)
    applied_timeout: Decimal = Decimal(0)
    charge_refused: Decimal = Decimal(0)
    missed_wake: Decimal = Decimal(0)
    batch_result_false: Decimal = Decimal(0)
    push_duplicate: Decimal = Decimal(0)
    push_reorder: Decimal = Decimal(0)
    # how late a slow reply is, wall milliseconds
    slow_reply_ms: int = Field(default=1_500, ge=0)

    @field_validator(*FAULTS)
    @classmethod
    def _probability(cls, value: Decimal) -> Decimal:
        if not value.is_finite() or not 0 <= value <= 1:
            raise ValueError(f"a probability must be in [0, 1], not {value}")
        return value

    def ppm(self, name: str) -> int:
        value: Decimal = getattr(self, name)
        return int(value * PPM)

    def with_text(self, text: str) -> FaultSettings:
        """These settings with `name=probability,...` applied (the CLI's --faults)."""
        changes: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, sep, value = part.partition("=")
            name = name.strip()
            if not sep or (name not in FAULTS and name != "slow_reply_ms"):
                known = ", ".join([*FAULTS, "slow_reply_ms"])
                raise ValueError(f"unknown fault {part!r}: use name=probability with {known}")
            try:
                changes[name] = int(value) if name == "slow_reply_ms" else Decimal(value.strip())
            except (InvalidOperation, ValueError):
                raise ValueError(f"fault {name}: {value!r} is not a number") from None
        return self.model_validate({**self.model_dump(), **changes})


class Faults:
    """Seeded draws; thread-safe (replies are drawn from the API's threads)."""

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        total = sum(settings.ppm(name) for name in COMMAND_FATES)
        if total > PPM:
            raise ValueError("the command fault probabilities add up to more than 1")
        self.settings = settings
        self._streams = {name: random.Random(f"{seed}/fault/{name}") for name in FAULTS}
        self._command = random.Random(f"{seed}/fault/command")
        self._lock = threading.Lock()
        self.counts: dict[str, int] = dict.fromkeys(FAULTS, 0)

    def happens(self, name: str) -> bool:
        ppm = self.settings.ppm(name)
        if ppm == 0:
            return False
        with self._lock:
            hit = self._streams[name].randrange(PPM) < ppm
            if hit:
                self.counts[name] += 1
        return hit

    def reply_fate(self) -> ReplyFate | None:
        if self.happens("lost_reply"):
            return ReplyFate.LOST
        if self.happens("slow_reply"):
            return ReplyFate.SLOW
        return None

    def command_fate(self) -> str | None:
        """One of COMMAND_FATES, or None for a command that goes as it should."""
        if not any(self.settings.ppm(name) for name in COMMAND_FATES):
            return None
        with self._lock:
            draw = self._command.randrange(PPM)
            for name in COMMAND_FATES:
                draw -= self.settings.ppm(name)
                if draw < 0:
                    self.counts[name] += 1
                    return name
        return None

    def chance(self, name: str) -> random.Random:
        """The stream of a fault, for the extra draws it needs (how long a push is held)."""
        return self._streams[name]
