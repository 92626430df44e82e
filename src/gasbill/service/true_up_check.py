"""Do charges plus true-ups equal the tariff in force? The demo's and an auditor's check.

After the price-change true-up has run, every meter-mode account's gas
charges (the shadow billing, to `meter_credit`) plus its true-ups must be
the tariff in force rated over the same readings from the same starting
point, to the fen. This rates the tariff in force
afresh from the meter's opening and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from gasbill.domain.accounts import BillingMode
from gasbill.domain.ledger import AccountCode, TransferKind
from gasbill.service.billing import opening_of, rate_account
from gasbill.service.billing_ports import BillingUnitOfWork
from gasbill.service.ports import TariffBook

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class InForce:
    """One meter-mode account's books against the tariff in force, in fen."""

    account_id: int
    charged_fen: int  # net charges to meter_credit (the shadow billing)
    trued_up_fen: int  # net true-ups (prepaid → revenue, less refunds)
    in_force_fen: int  # the tariff in force rated over the same readings, from the opening

    @property
    def agrees(self) -> bool:
        return self.charged_fen + self.trued_up_fen == self.in_force_fen


def check_in_force(
    uow: BillingUnitOfWork,
    account_ids: Sequence[int],
    *,
    catalog: TariffBook,
    now: datetime,
    max_flow_m3_per_hour: Decimal | None = None,
) -> list[InForce]:
    """Charges plus true-ups against the tariff in force, account by account.

    The tariff in force is rated afresh over every reading up to `now`, from
    the reading at which the meter was opened, with billing's anomaly rules:
    what the books must add up to once billing and the true-up have run.
    """
    found: list[InForce] = []
    with uow:
        store = uow.billing
        accounts = [
            a
            for a in store.accounts(sorted(set(account_ids)))
            if a.billing_mode == BillingMode.METER
        ]
        ids = [a.id for a in accounts if a.id is not None]
        bindings = store.bindings(ids)
        openings = store.meter_openings(ids)
        meters = [(m.company_no, m.comm_no) for i in ids for _, m in bindings.get(i, [])]
        readings = store.frozen_readings(meters, EPOCH, with_real_time=meters)
        for account in accounts:
            assert account.id is not None
            rows = bindings.get(account.id, [])
            opening = None
            if account.id in openings:
                opened_at = openings[account.id]
                if opened_at is None:
                    continue  # not open on its meter: nothing is owed yet
                opening = opening_of(opened_at, rows, readings)
            rater = catalog.rater(account.tariff_id)
            rated = rate_account(
                account, rows, None, readings, rater, max_flow_m3_per_hour, now, opening=opening
            )
            in_force = rated.result.total_fen if rated is not None else 0
            charged, trued_up = _books(uow, account.id)
            found.append(InForce(account.id, charged, trued_up, in_force))
    return found


def _books(uow: BillingUnitOfWork, account_id: int) -> tuple[int, int]:
    """(net gas charged to meter_credit, net true-ups), in fen."""
    key = str(account_id)
    meter_credit, prepaid = AccountCode.meter_credit(key), AccountCode.prepaid(key)
    revenue = AccountCode.revenue("gas")
    charged = uow.ledger.net_posted(meter_credit, revenue, TransferKind.CHARGE)
    trued_up = uow.ledger.net_posted(prepaid, revenue, TransferKind.TRUE_UP)
    return charged, trued_up


def in_force_report(
    uow_factory: Callable[[], BillingUnitOfWork],
    account_ids: Sequence[int] | None,
    *,
    catalog: TariffBook,
    now: datetime,
    max_flow_m3_per_hour: Decimal | None = None,
) -> dict[str, Any]:
    """The auditor's report (API and CLI alike): totals, then one line per meter-mode
    account; every active account when none are named."""
    if not account_ids:
        with uow_factory() as uow:
            account_ids = uow.accounts.active_ids()
    found = check_in_force(
        uow_factory(),
        account_ids,
        catalog=catalog,
        now=now,
        max_flow_m3_per_hour=max_flow_m3_per_hour,
    )
    differing = [a for a in found if not a.agrees]
    return {
        "totals": {
            "accounts": len(found),
            "agreeing": len(found) - len(differing),
            "differing": len(differing),
            "trued_up_accounts": sum(1 for a in found if a.trued_up_fen),
            "trued_up_fen": sum(a.trued_up_fen for a in found),
        },
        "accounts": [
            {
                "account_id": a.account_id,
                "agrees": a.agrees,
                "charged_fen": a.charged_fen,
                "trued_up_fen": a.trued_up_fen,
                "in_force_fen": a.in_force_fen,
            }
            for a in found
        ],
    }
