"""Named places where the reliability harness may crash the process (no-ops in production).

A crash point marks a step after which a real process could die: before a
commit (the transaction is lost) or after one (it stays, and what follows is
not done). `crash_point(site)` does nothing unless a hook is installed; the
simulation harness (tests/sim) installs one that raises at a chosen site,
then drops the process's state, reopens the database and lets start-up
recovery (the jobs) finish the work. Nothing in gasbill installs a hook.
"""

from __future__ import annotations

from collections.abc import Callable

# the payment → hold → command → send → report → post path, then ingest → inbox → bill
SITES = (
    "payment.before_commit",
    "payment.after_commit",
    "dispatch.after_claim",
    "send.after_add",
    "send.after_commit",
    "report.before_commit",
    "report.after_commit",
    "ingest.after_store",
    "inbox.before_commit",
    "inbox.after_commit",
    "bill.after_days",
    "bill.after_post",
)

_hook: Callable[[str], None] | None = None


def crash_point(site: str) -> None:
    """Let an installed hook crash here; nothing happens without one."""
    hook = _hook
    if hook is not None:
        hook(site)


def install(hook: Callable[[str], None] | None) -> None:
    """Call `hook(site)` at every crash point from now on (None: stop)."""
    global _hook
    _hook = hook
