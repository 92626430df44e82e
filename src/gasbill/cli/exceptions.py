"""`gasbill exceptions list|accept|dismiss|resolve`: the exceptions queue from a terminal.

The same use cases as the staff API: the queue lists billing exceptions and
push conflicts (corrected re-pushes) oldest first; `accept` takes a
correction (re-rates the account, posts the difference), `dismiss` keeps the
stored values, `resolve` closes a billing exception saying what was done.
Decisions are audited as `cli:<login>`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from gasbill.cli.options import ConfigOption, fail, settings_from
from gasbill.cli.staff import current_services, terminal_actor
from gasbill.domain.errors import GasbillError
from gasbill.domain.money import Money
from gasbill.service.exceptions import resolve_exception
from gasbill.service.exceptions_queue import exceptions_queue
from gasbill.service.push_conflicts import ConflictReview, accept_correction, dismiss_conflict

app = typer.Typer(help="The exceptions queue: billing exceptions and push conflicts.")
ConflictArg = Annotated[int, typer.Argument(help="The push conflict's id (from the list).")]
ReasonOption = Annotated[str, typer.Option(help="Why: kept in the audit log.")]


@app.command("list")
def list_command(
    status: Annotated[str, typer.Option(help="open, resolved or all.")] = "open",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    config: ConfigOption = None,
) -> None:
    """What waits for a person, oldest first."""
    if status not in ("open", "resolved", "all"):
        fail("--status is open, resolved or all")
    settings = settings_from(config)
    with current_services(settings) as services:
        items = exceptions_queue(
            services.uow(), status=None if status == "all" else status, limit=limit
        )
    rows = []
    for item in items:
        if isinstance(item, ConflictReview):
            c = item.conflict
            rows.append(("conflict", c.id, "push_conflict", c.status, item.detail()))
        else:
            rows.append(("exception", item.id, item.kind, item.status, item.detail))
    if as_json:
        for what, id_, kind, state, detail in rows:
            record = {"type": what, "id": id_, "kind": kind, "status": state, "detail": detail}
            typer.echo(json.dumps(record, ensure_ascii=False))
        return
    table = Table("type", "id", "kind", "status", "detail")
    for what, id_, kind, state, detail in rows:
        table.add_row(what, str(id_), kind, state, detail)
    Console(highlight=False, soft_wrap=True).print(table)


@app.command("accept")
def accept_command(
    conflict: ConflictArg, reason: ReasonOption, config: ConfigOption = None
) -> None:
    """Accept a push conflict's correction: the reading is replaced and the account re-rated."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            done = accept_correction(
                services.uow(),
                conflict,
                reason=reason,
                actor=terminal_actor(),
                catalog=services.catalog,
                max_flow_m3_per_hour=settings.rating.max_flow_m3_per_hour,
                now=services.now(),
            )
        except GasbillError as exc:
            fail(str(exc))
    billing = done.billing
    moved = (
        "not a billed reading: no money moved"
        if billing is None
        else f"re-rated: {Money.of_fen(billing.charged_fen).fixed()} yuan charged, "
        f"{Money.of_fen(billing.credited_fen).fixed()} yuan credited"
    )
    typer.echo(f"push conflict {conflict} accepted; {moved}")


@app.command("dismiss")
def dismiss_command(
    conflict: ConflictArg, reason: ReasonOption, config: ConfigOption = None
) -> None:
    """Dismiss a push conflict: the stored values stay, no money moves."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            dismiss_conflict(
                services.uow(), conflict, reason=reason, actor=terminal_actor(), now=services.now()
            )
        except GasbillError as exc:
            fail(str(exc))
    typer.echo(f"push conflict {conflict} dismissed")


@app.command("resolve")
def resolve_command(
    exception: Annotated[int, typer.Argument(help="The exception's id (from the list).")],
    resolution: Annotated[str, typer.Option(help="What was done about it (kept with it).")],
    config: ConfigOption = None,
) -> None:
    """Resolve a billing exception, saying what was done."""
    settings = settings_from(config)
    with current_services(settings) as services:
        try:
            row = resolve_exception(
                services.uow(),
                exception,
                resolution=resolution,
                actor=terminal_actor(),
                now=services.now(),
            )
        except GasbillError as exc:
            fail(str(exc))
    Console(highlight=False, soft_wrap=True).print(
        f"exception {row.id} ({row.kind}) resolved: {row.resolution}"
    )
