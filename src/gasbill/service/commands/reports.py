"""Command outcomes that reach us: pushed reports (spec §5.3) and polled records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gasbill.crashpoints import crash_point
from gasbill.domain.commands import CtrlState
from gasbill.domain.outbox import CommandStatus
from gasbill.jsontext import dumps_exact
from gasbill.service.commands.queue import CommandPolicy
from gasbill.service.commands.results import apply_record, apply_state
from gasbill.service.ports import (
    CommandCodec,
    CommandPlatform,
    NewCommandReport,
    PlatformError,
    UnitOfWork,
)


@dataclass(frozen=True, slots=True)
class ReportItem:
    ctrl_id: int
    meter_comm_no: str
    ctrl_state: CtrlState
    return_data: object
    feedback: str
    raw: dict[str, object]


def _lock_account_first(uow: UnitOfWork, company_no: str, ctrl_id: int) -> None:
    """The global lock order: the command's account before the command and the ledger.

    A payment locks the account, then its ledger accounts; a report that
    posted a hold first and reached the account later could deadlock with it.
    """
    account_id = uow.commands.account_of_ctrl_id(company_no, ctrl_id)
    if account_id is not None:
        uow.accounts.get(account_id, lock=True)


def receive_report(
    uow: UnitOfWork,
    codec: CommandCodec,
    company_no: str,
    item: ReportItem,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> str:
    """Apply one report; one we cannot match yet is kept until the command is found."""
    with uow:
        store = uow.commands
        _lock_account_first(uow, company_no, item.ctrl_id)
        command = store.by_ctrl_id(company_no, item.ctrl_id)
        if command is None:
            store.add_report(
                NewCommandReport(
                    company_no=company_no,
                    ctrl_id=item.ctrl_id,
                    meter_comm_no=item.meter_comm_no[:50],
                    ctrl_state=int(item.ctrl_state),
                    payload=dumps_exact(item.raw),
                    received_at=now,
                )
            )
            uow.commit()
            return "kept until the command is known"
        if command.meter_comm_no != item.meter_comm_no:
            return f"ctrl_id {item.ctrl_id} belongs to meter {command.meter_comm_no}"
        apply_state(
            uow,
            codec,
            command,
            item.ctrl_state,
            item.return_data,
            item.feedback,
            policy=policy,
            now=now,
        )
        crash_point("report.before_commit")
        uow.commit()
        crash_point("report.after_commit")
        return ""


def poll_silent(
    uow_factory: Callable[[], UnitOfWork],
    platform: CommandPlatform,
    codec: CommandCodec,
    *,
    policy: CommandPolicy,
    now: datetime,
) -> int:
    """Ask the platform about sent commands we have heard nothing of for a while."""
    with uow_factory() as uow:  # claimed: another worker asks after others meanwhile
        silent = uow.commands.claim_stale(
            CommandStatus.SENT, now - policy.poll_after, policy.batch_size, now
        )
        uow.commit()
    updated = 0
    for command in silent:
        assert command.ctrl_id is not None and command.id is not None
        try:
            record = platform.get_model(command.ctrl_id)
        except PlatformError:
            continue
        uow = uow_factory()
        with uow:
            current = uow.commands.get(command.id, lock=True)
            if current is None:
                continue
            if record is None:
                current.last_error = "the platform no longer knows this ctrl_id"
            else:
                apply_record(uow, codec, current, record, policy=policy, now=now)
            if current.status == CommandStatus.SENT:
                current.sent_at = now  # heard of it now: ask again after another interval
            uow.commands.save(current)
            uow.commit()
            updated += 1
    return updated
