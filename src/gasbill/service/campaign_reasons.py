"""Why a campaign meter failed, in words a clerk reads on the campaign's progress."""

from __future__ import annotations

from typing import Protocol

from gasbill.domain.commands import LadderPrice


class EndedCommand(Protocol):
    """What a failure names of the command that ended it."""

    @property
    def id(self) -> int | None: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def platform_state(self) -> int | None: ...
    @property
    def feedback(self) -> str | None: ...
    @property
    def last_error(self) -> str | None: ...


def command_failure(name: str, command: EndedCommand) -> str:
    """`setprice #12 attention after 5 attempt(s); last state 3; platform: …; …`"""
    parts = [f"{name} #{command.id} {command.status} after {command.attempts} attempt(s)"]
    if command.platform_state is not None:
        parts.append(f"last state {command.platform_state}")
    if command.feedback:
        parts.append(f"platform: {command.feedback}")
    if command.last_error:
        parts.append(command.last_error)
    return "; ".join(parts)


def ladder_text(held: object) -> str:
    """A `getprice` answer as the failure shows it, or that it could not be read."""
    if not isinstance(held, LadderPrice):
        return f"an unreadable answer ({held})"
    prices = "/".join(str(p.value) for p in held.prices)
    ladders = "/".join(str(v.value) for v in held.ladders)
    return f"prices {prices}, ladders {ladders}, cycle {held.cycle_start} × {held.cycle_months}"
