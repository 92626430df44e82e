"""`gasbill audit verify|anchor`: check the hash chain against its anchors; anchor its head."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.console import Console

from gasbill.adapters.audit_anchor import AnchorFile, anchor_path
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.cli.options import ConfigOption, err_console, fail, settings_from
from gasbill.cli.staff import current_engine
from gasbill.config import Settings
from gasbill.domain.audit import utc_instant
from gasbill.service.audit import anchor_head, verify_audit

app = typer.Typer(
    help="The audit log: verify its hash chain, anchor its head.", no_args_is_help=True
)


def anchors_for(settings: Settings) -> AnchorFile | None:
    path = anchor_path(settings.database.url, settings.audit.anchor_file)
    return AnchorFile(path) if path is not None else None


@app.command("verify")
def verify_command(config: ConfigOption = None) -> None:
    """Check every entry follows from the one before and the anchored heads are all there.

    Exits 1 on any break.
    """
    settings = settings_from(config)
    with current_engine(settings) as engine:
        result = verify_audit(UnitOfWork(engine), anchors_for(settings))
    console = Console()
    if result.ok:
        console.print(f"audit log OK: {result.entries} entries, chain intact", highlight=False)
        if result.newest_anchor is not None:
            console.print(
                f"anchored: {result.anchors} heads in {result.anchor_file}, the newest "
                f"seq {result.newest_anchor.seq} at {utc_instant(result.newest_anchor.at)}",
                highlight=False,
            )
        else:
            where = result.anchor_file or "nowhere: set [audit] anchor_file"
            err_console.print(
                f"[yellow]note[/]: no anchored head yet ({where}); deleting the newest "
                "entries would not be detected",
                highlight=False,
            )
        return
    for found in result.breaks:
        where = f"entry {found.seq}" if found.seq is not None else "the anchor"
        err_console.print(f"[bold red]break[/] at {where}: {found.problem}", highlight=False)
    err_console.print(
        f"audit log BROKEN: {len(result.breaks)} break(s) in {result.entries} entries",
        highlight=False,
    )
    raise typer.Exit(1)


@app.command("anchor")
def anchor_command(config: ConfigOption = None) -> None:
    """Append the log's newest entry, sealed with the audit key, to the anchor file now."""
    settings = settings_from(config)
    anchors = anchors_for(settings)
    if anchors is None:
        fail("no anchor file: set [audit] anchor_file")
    with current_engine(settings) as engine:
        anchor = anchor_head(UnitOfWork(engine), anchors, now=datetime.now(UTC))
    if anchor is None:
        Console().print(f"nothing new to anchor in {anchors.path}", highlight=False)
        return
    Console().print(
        f"anchored seq {anchor.seq} ({anchor.entries} entries) in {anchors.path}",
        highlight=False,
    )
