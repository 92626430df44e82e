"""The nightly reconciliation job: every account as of now, its totals logged, its report kept.

Logged always, so an operator's log search or alerting sees each night's
figures; written as JSON (the differing accounts, with evidence and
actions) to a directory when one is configured, so an auditor can read the
night's report later without running it again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gasbill.config import DecisionSettings
from gasbill.service.ports import CommandCodec, TariffBook
from gasbill.service.reconciliation import reconcile
from gasbill.service.reconciliation_ports import ReconciliationUnitOfWork
from gasbill.service.reconciliation_report import render_json

log = logging.getLogger("gasbill.reconcile")


@dataclass(frozen=True, slots=True)
class NightlyOutcome:
    as_of: datetime
    accounts: int
    differing: int
    path: Path | None = None


def reconcile_nightly(
    uow: ReconciliationUnitOfWork,
    catalog: TariffBook,
    *,
    codec: CommandCodec,
    now: datetime,
    decisions: DecisionSettings,
    report_dir: str = "",
    connections: int = 1,
) -> NightlyOutcome:
    report = reconcile(
        uow, catalog, as_of=now, decisions=decisions, codec=codec, connections=connections
    )
    t = report.totals
    causes = {k: v for k, v in t.by_cause.items() if v}
    log.info(
        "reconciliation as of %s: %d accounts, %d agree, %d differ; by cause %s; "
        "balance differences %s yuan (absolute %s yuan)",
        now.isoformat(),
        t.accounts,
        t.agreeing,
        t.differing,
        causes,
        t.balance_difference.value,
        t.balance_difference_abs.value,
    )
    path = None
    if report_dir:
        folder = Path(report_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"reconciliation-{now:%Y%m%dT%H%M%SZ}.json"
        partial = path.with_suffix(".json.partial")
        partial.write_text(render_json(report), encoding="utf-8")
        partial.replace(path)  # a reader never sees half a report
    return NightlyOutcome(now, t.accounts, t.differing, path)
