"""Where a command stands, in a clerk's words: stage, reason, next attempt.

One view for every command (an opening, its baseline read, a top-up, a
valve command, a campaign's setprice), the same in the API, the CLI and the
web pages. A command that cannot be sent says why (our login refused, the
platform unreachable or refusing) and when it goes again; one the meter
refused says what the meter answered, in the vendor's terms (spec §5.1:
`ctrl_state`; §5.2: `remote_charge_return.success` 0xAA/0xBB and its
`reason`, `open_account_return.success`, `reason`, `reason_msg`).
"""

from __future__ import annotations

from datetime import datetime

from gasbill.domain.commands import CtrlType
from gasbill.domain.outbox import CommandStatus
from gasbill.jsontext import loads_exact
from gasbill.service.ports import CommandRecord

# spec §5.1, ctrl_state
PLATFORM_STATES = {
    0: "waiting to be sent to the meter",
    1: "sent to the meter",
    2: "acknowledged by the meter",
    3: "done",
    4: "the task failed",
    5: "cancelled",
    6: "timed out: the meter did not answer in time",
    7: "the platform could not send it to the meter",
    99: "another error on the platform",
}

STAGES = {
    CommandStatus.QUEUED: "queued",
    CommandStatus.SENDING: "sending",
    CommandStatus.SENT: "sent",
    CommandStatus.DONE: "confirmed",
    CommandStatus.REFUSED: "failed",
    CommandStatus.UNKNOWN: "checking with the meter",
    CommandStatus.CANCELLED: "cancelled",
    CommandStatus.ATTENTION: "needs attention",
}

CHARGE_OK, CHARGE_REFUSED = 0xAA, 0xBB

TYPE_NAMES: dict[str, str] = {
    CtrlType.OPEN_ACCOUNT: "account opening",
    CtrlType.REMOTE_CHARGE: "top-up",
    CtrlType.GET_CHARGE_STATE: "top-up counter read",
    CtrlType.SET_PRICE: "price change",
    CtrlType.GET_PRICE: "price read",
    CtrlType.SET_VALVE_OFF: "valve close",
    CtrlType.SET_VALVE_ON: "valve open",
}


def platform_state_words(state: int | None) -> str:
    if state is None:
        return ""
    return PLATFORM_STATES.get(state, f"state {state}")


def _returned(command: CommandRecord) -> dict[str, object]:
    if not command.return_data:
        return {}
    try:
        data = loads_exact(command.return_data)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def meter_refusal(command: CommandRecord) -> str:
    """What the meter said when it refused, per the vendor's document; '' if it did not."""
    data = _returned(command)
    if not data or "success" not in data:
        return ""
    success = data.get("success")
    reason = data.get("reason")
    message = str(data.get("reason_msg") or "").strip()
    if command.ctrl_type == CtrlType.REMOTE_CHARGE:
        if success == CHARGE_OK:
            return ""
        words = "the meter refused the top-up (success flag 0xBB)"
    elif command.ctrl_type == CtrlType.OPEN_ACCOUNT:
        if success == 0:
            return ""
        words = "the meter refused the account opening (success flag 1)"
    else:
        return ""
    if reason not in (None, 0):
        # the vendor's document gives the reason as a code without a table of meanings
        words += f", reason code {reason}"
    if message:
        words += f": {message}"
    return words


def why(command: CommandRecord) -> str:
    """The reason a command is not (yet) done, or '' when there is none to give."""
    refusal = meter_refusal(command)
    if command.outcome == "not_applied":
        return (refusal or "the meter did not apply it") + (
            "; the money stays in the account (retry or refund)" if command.amount_fen else ""
        )
    if command.outcome == "counter_mismatch":
        return "the meter's top-up counter disagrees with ours; an auditor must reconcile"
    if refusal:
        return refusal
    state = command.platform_state
    if state is not None and state not in (0, 1, 2, 3):
        detail = command.feedback or command.last_error
        return platform_state_words(state) + (f": {detail}" if detail else "")
    return command.last_error or command.feedback


def stage_of(command: CommandRecord) -> str:
    status = CommandStatus(command.status)
    stage = STAGES.get(status, str(status))
    if status is CommandStatus.SENT and command.platform_state:
        stage = "waiting for the meter"
    if status is CommandStatus.SETTLED:
        stage = "confirmed" if command.outcome == "applied" else "failed"
    if status is CommandStatus.DONE and command.outcome not in ("", "applied", "read"):
        stage = "failed"
    return stage


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def command_progress(command: CommandRecord) -> dict[str, object]:
    """A command's stage, its reason and its next attempt: what the clerk sees everywhere."""
    stage = stage_of(command)
    waiting = stage in ("queued", "sending")
    reason = why(command) if stage != "confirmed" else ""
    return {
        "id": command.id,
        "kind": TYPE_NAMES.get(command.ctrl_type, command.ctrl_type.rsplit(".", 1)[-1]),
        "stage": stage,
        "status": command.status,
        "reason": reason,
        "next_attempt_at": _iso(command.next_attempt_at) if waiting else None,
        "attempts": command.attempts,
        "platform_state": command.platform_state,
        "platform_state_words": platform_state_words(command.platform_state),
        "created_at": _iso(command.created_at),
        "finished_at": _iso(command.finished_at),
    }
