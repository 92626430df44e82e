"""Commands to meters, as staff see them: top-up progress, and cancel/retry for a person."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.api.deps import ContextDep, CurrentUser, UowDep
from gasbill.api.policy import API
from gasbill.api.staff.schemas import MAX_ID, PathId
from gasbill.domain.commands import CtrlType
from gasbill.service.accounts import NotFound
from gasbill.service.commands.actions import cancel_command, retry_command
from gasbill.service.commands.progress import command_progress
from gasbill.service.payments import top_up_progress

router = APIRouter(prefix=API, tags=["commands"])


def command_view(command: Any) -> dict[str, Any]:
    view = {
        "id": command.id,
        "account_id": command.account_id,
        "meter": command.meter_comm_no,
        "type": command.ctrl_type.rsplit(".", 1)[-1],
        "status": command.status,
        "outcome": command.outcome,
        "platform_state": command.platform_state,
        "ctrl_id": command.ctrl_id,
        "attempts": command.attempts,
        "reason": command.reason,
        "last_error": command.last_error,
        "created_at": command.created_at.isoformat(),
        "progress": command_progress(command),
    }
    if command.ctrl_type == CtrlType.REMOTE_CHARGE:
        view["top_up"] = top_up_progress(command)
    return view


@router.get(
    "/accounts/{account_id}/top-ups", summary="An account's remote top-ups and where each stands"
)
def top_ups(account_id: PathId, uow: UowDep) -> list[dict[str, Any]]:
    with uow:
        if uow.accounts.get(account_id) is None:
            raise NotFound(f"no account {account_id}")
        commands = CommandStore(uow.session).of_account(account_id)
        return [top_up_progress(c) for c in commands if c.ctrl_type == CtrlType.REMOTE_CHARGE]


@router.get("/commands", summary="Commands needing a person (status=attention), or an account's")
def commands(
    uow: UowDep,
    account_id: int | None = Query(default=None, ge=1, le=MAX_ID),
    limit: int = Query(default=100, ge=1, le=500),
) -> list[dict[str, Any]]:
    with uow:
        store = CommandStore(uow.session)
        found = (
            store.of_account(account_id, limit) if account_id else store.needing_attention(limit)
        )
        return [command_view(c) for c in found]


@router.get("/commands/{command_id}", summary="One command: its stage, reason and next attempt")
def command(command_id: PathId, uow: UowDep) -> dict[str, Any]:
    with uow:
        found = CommandStore(uow.session).get(command_id)
        if found is None:
            raise NotFound(f"no command {command_id}")
        return command_view(found)


def _platform(ctx: ContextDep, uow: UowDep, command_id: int) -> Any:
    """The platform API for a command that exists: an unknown id is a 404 first."""
    with uow:
        if CommandStore(uow.session).get(command_id) is None:
            raise NotFound(f"no command {command_id}")
    if ctx.platform is None:
        raise HTTPException(503, "the platform's remote-control API is not configured")
    return ctx.platform


@router.post("/commands/{command_id}/cancel", summary="Cancel a command not yet applied")
def cancel(command_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> dict[str, Any]:
    command = cancel_command(
        uow, _platform(ctx, uow, command_id), command_id, actor=user.username, now=ctx.clock()
    )
    return command_view(command)


@router.post(
    "/commands/{command_id}/retry",
    summary="Retry a command that needs a person; a refused top-up is topped up again "
    "(the new command is returned)",
)
def retry(command_id: PathId, user: CurrentUser, ctx: ContextDep, uow: UowDep) -> dict[str, Any]:
    command = retry_command(
        uow,
        _platform(ctx, uow, command_id),
        command_id,
        actor=user.username,
        now=ctx.clock(),
        policy=ctx.commands,
    )
    return command_view(command)
