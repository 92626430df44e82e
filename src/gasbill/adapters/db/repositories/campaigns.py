"""Campaigns' rows: campaigns, their meters, what meters confirmed, and the true-ups credited
to each (the true-up's own rows are `true_ups.TrueUpStore`'s)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from gasbill.adapters.db.bulk import array_param, unnested
from gasbill.adapters.db.claims import CAMPAIGN_ENROL, FULL_LADDER, key_of, try_claim
from gasbill.adapters.db.id_lists import IdIn
from gasbill.adapters.db.tables.accounts import Account, Meter, MeterBinding
from gasbill.adapters.db.tables.campaigns import Campaign, CampaignMeter, TrueUpDay
from gasbill.adapters.db.tables.commands import Command
from gasbill.domain.accounts import BillingMode
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.service.campaign_ports import CampaignMeterRow, NewCampaign
from gasbill.service.ports import CampaignRecord

METER_MODE = str(BillingMode.METER)


@dataclass(frozen=True, slots=True)
class EnrolAccount:
    """What enrolment reads of an account."""

    id: int
    persons: int
    opened_on: date


@dataclass(slots=True)
class EnrolMeter:
    """What enrolment reads of a meter (a `MeterRecord`)."""

    id: int | None
    company_no: str
    comm_no: str


class CampaignStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- campaigns ----------------------------------------------------------------
    def claim_enrolment(self, campaign_id: int) -> bool:
        """Claim this campaign's enrolment for the transaction (False: another worker has it)."""
        return try_claim(self.session, CAMPAIGN_ENROL, campaign_id)

    def claim_full_ladder(self, tariff_id: str) -> bool:
        """Claim this tariff's full-ladder enrolment for the transaction."""
        return try_claim(self.session, FULL_LADDER, key_of(tariff_id))

    def get(self, campaign_id: int) -> Campaign | None:
        return self.session.get(Campaign, campaign_id)

    def by_label(self, tariff_id: str, label: str) -> Campaign | None:
        return self.session.exec(
            select(Campaign).where(Campaign.tariff_id == tariff_id, Campaign.label == label)
        ).first()

    def newest(self, tariff_id: str) -> Campaign | None:
        return self.session.exec(
            select(Campaign)
            .where(Campaign.tariff_id == tariff_id)
            .order_by(col(Campaign.effective_at).desc())
            .limit(1)
        ).first()

    def add(self, new: NewCampaign) -> Campaign:
        campaign = Campaign(
            tariff_id=new.tariff_id,
            label=new.label,
            effective_at=new.effective_at,
            created_at=new.created_at,
            status=new.status,
        )
        self.session.add(campaign)
        self.session.flush()
        return campaign

    def save(self, row: CampaignRecord | CampaignMeterRow) -> None:
        self.session.add(row)
        self.session.flush()

    def all(self, *, status: str | None = None) -> Sequence[Campaign]:
        query = select(Campaign).order_by(col(Campaign.effective_at), col(Campaign.id))
        if status is not None:
            query = query.where(Campaign.status == status)
        return self.session.exec(query).all()

    # -- meter-mode accounts ------------------------------------------------------
    def meter_tariffs(self) -> dict[str, date]:
        """The tariffs of active meter-mode accounts, each with its earliest opening day."""
        query = (
            sa.select(col(Account.tariff_id), sa.func.min(col(Account.opened_on)))
            .where(col(Account.billing_mode) == METER_MODE, col(Account.status) == "active")
            .group_by(col(Account.tariff_id))
        )
        return {str(tariff): opened for tariff, opened in self.session.execute(query).all()}

    def meter_accounts(
        self, tariff_id: str, after_id: int, limit: int
    ) -> list[tuple[EnrolAccount, EnrolMeter]]:
        """Active meter-mode accounts on a tariff, with their active meter, by id: plain
        rows of what enrolment reads (no ORM objects: a campaign reads every meter)."""
        a, m = cast(sa.Table, Account.__table__), cast(sa.Table, Meter.__table__)  # type: ignore[attr-defined]
        b = cast(sa.Table, MeterBinding.__table__)  # type: ignore[attr-defined]
        query = (
            sa.select(a.c.id, a.c.persons, a.c.opened_on, m.c.id, m.c.company_no, m.c.comm_no)
            .join(b, b.c.account_id == a.c.id)
            .join(m, m.c.id == b.c.meter_id)
            .where(
                a.c.tariff_id == tariff_id,
                a.c.billing_mode == METER_MODE,
                a.c.status == "active",
                b.c.unbound_at.is_(None),
                a.c.id > after_id,
                # said of the binding too: without it the merge join read every binding
                # from the first on, each page (quadratic over a campaign: 17 ms a page
                # half-way through 100,000 meters, 1 ms with it)
                b.c.account_id > after_id,
            )
            .order_by(a.c.id)
            .limit(limit)
        )
        return [
            (EnrolAccount(a_id, persons, opened_on), EnrolMeter(m_id, company_no, comm_no))
            for a_id, persons, opened_on, m_id, company_no, comm_no in self.session.execute(query)
        ]

    # -- campaign meters ------------------------------------------------------------
    def enrolled(self, campaign_id: int, meter_ids: Sequence[int]) -> set[int]:
        if not meter_ids:
            return set()
        if self.session.get_bind().dialect.name == "postgresql":
            # one primary-key probe per meter of the page, whatever the statistics say: the
            # campaign's rows are all new, and a plan from the empty table's statistics
            # compared every row of the campaign with every id (80 ms a page at 20,000)
            listed = array_param("meter_ids", [int(m) for m in meter_ids], sa.BigInteger())
            wanted = sa.func.unnest(listed).table_valued("meter_id").render_derived("wanted")
            row = cast(sa.Table, CampaignMeter.__table__)  # type: ignore[attr-defined]
            probe = (
                sa.select(row.c.meter_id)
                .where(row.c.campaign_id == campaign_id, row.c.meter_id == wanted.c.meter_id)
                .limit(1)
                .lateral("found")
            )
            query = sa.select(probe.c.meter_id).select_from(wanted.join(probe, sa.true()))
            return {int(m) for (m,) in self.session.execute(query).all()}
        query = sa.select(col(CampaignMeter.meter_id)).where(
            col(CampaignMeter.campaign_id) == campaign_id,
            IdIn(col(CampaignMeter.meter_id), meter_ids),
        )
        return {int(m) for (m,) in self.session.execute(query).all()}

    def add_meter(self, row: CampaignMeter) -> None:
        self.session.add(row)
        self.session.flush()

    def add_meters(self, rows: Sequence[dict[str, Any]]) -> None:
        """Several campaign rows (column values) inserted in one statement, in batches."""
        table = cast(sa.Table, CampaignMeter.__table__)  # type: ignore[attr-defined]
        if not rows:
            return
        if len(rows) > 1 and self.session.get_bind().dialect.name == "postgresql":
            # one statement over one JSON parameter: psycopg parses a multi-row VALUES
            # statement again on every execution (bench/campaign.py)
            names = list(rows[0])
            self.session.execute(sa.insert(table).from_select(names, unnested(table, rows)))
            return
        self.session.execute(sa.insert(table), list(rows))

    def pushes(self, account_ids: Sequence[int]) -> dict[int, list[tuple[str, str, datetime]]]:
        """Per account, its campaigns' setprices on its own tariff: (label, status, finished).

        `status` is the setprice command's; `finished` its ending time (for a
        confirmed one, when the meter confirmed the ladder).
        """
        result: dict[int, list[tuple[str, str, datetime]]] = defaultdict(list)
        if not account_ids:
            return result
        query = (
            sa.select(
                col(CampaignMeter.account_id),
                col(Campaign.label),
                col(Command.status),
                col(Command.finished_at),
            )
            .join(Campaign, col(Campaign.id) == col(CampaignMeter.campaign_id))
            .join(Account, col(Account.id) == col(CampaignMeter.account_id))
            .join(Command, col(Command.id) == col(CampaignMeter.setprice_id))
            .where(
                IdIn(col(CampaignMeter.account_id), account_ids),
                col(Campaign.tariff_id) == col(Account.tariff_id),
            )
        )
        for account_id, label, status, finished in self.session.execute(query).all():
            result[int(account_id)].append((label, status, finished))
        return result

    def confirmations(self, account_ids: Sequence[int]) -> dict[int, dict[str, datetime]]:
        """Per account, each price change its meter confirmed, and when (setprice done)."""
        found: dict[int, dict[str, datetime]] = {}
        for account_id, pushes in self.pushes(account_ids).items():
            done = {
                label: finished
                for label, status, finished in pushes
                if status == CommandStatus.DONE and finished is not None
            }
            if done:
                found[account_id] = done
        return found

    def needing_work(
        self, limit: int, *, after: tuple[int, int] | None = None
    ) -> Sequence[CampaignMeter]:
        """Unverified campaign meters whose current command moved since last looked at,
        after `after` (campaign, meter): a run walks the campaign meters once, where each
        page read from the first again stepped over all those followed before it
        (quadratic: 100,000 meters sent while enrolment ran took minutes to follow)."""
        current = sa.func.coalesce(col(CampaignMeter.getprice_id), col(CampaignMeter.setprice_id))
        query = (
            select(CampaignMeter)
            .join(Command, col(Command.id) == current)
            .where(
                col(CampaignMeter.status) != "verified",
                col(Command.status) != col(CampaignMeter.command_status),
            )
            .order_by(col(CampaignMeter.campaign_id), col(CampaignMeter.meter_id))
            .limit(limit)
            .with_for_update(of=CampaignMeter, skip_locked=True)
        )
        if after is not None:
            key = sa.tuple_(col(CampaignMeter.campaign_id), col(CampaignMeter.meter_id))
            query = query.where(key > sa.tuple_(sa.literal(after[0]), sa.literal(after[1])))
        return self.session.exec(query).all()

    def save_all(self, rows: Sequence[CampaignMeterRow]) -> None:
        """Several campaign meters saved in one flush (their updates batched)."""
        self.session.add_all(rows)
        self.session.flush()

    def commands(self, ids: Sequence[int]) -> dict[int, Command]:
        if not ids:
            return {}
        rows = self.session.exec(select(Command).where(col(Command.id).in_(list(ids)))).all()
        return {row.id: row for row in rows if row.id is not None}

    def counts(self, campaign_ids: Sequence[int] | None = None) -> dict[int, dict[str, int]]:
        query = sa.select(
            col(CampaignMeter.campaign_id), col(CampaignMeter.status), sa.func.count()
        ).group_by(col(CampaignMeter.campaign_id), col(CampaignMeter.status))
        if campaign_ids is not None:
            query = query.where(col(CampaignMeter.campaign_id).in_(list(campaign_ids)))
        result: dict[int, dict[str, int]] = defaultdict(dict)
        for campaign_id, status, count in self.session.execute(query).all():
            result[int(campaign_id)][status] = int(count)
        return result

    def failures(self, campaign_id: int, limit: int) -> list[tuple[CampaignMeter, str]]:
        rows = self.session.exec(
            select(CampaignMeter, Meter)
            .join(Meter, col(Meter.id) == col(CampaignMeter.meter_id))
            .where(CampaignMeter.campaign_id == campaign_id, CampaignMeter.status == "failed")
            .order_by(col(CampaignMeter.meter_id))
            .limit(limit)
        ).all()
        return [(row, meter.comm_no) for row, meter in rows]

    def true_up_totals(
        self, campaign_ids: Sequence[int] | None = None
    ) -> dict[int, tuple[int, int, int]]:
        """Per campaign: (fen charged, fen refunded, accounts), each account's days netted."""
        filters = [col(TrueUpDay.campaign_id).isnot(None)]
        if campaign_ids is not None:
            filters.append(col(TrueUpDay.campaign_id).in_(list(campaign_ids)))
        nets = (
            sa.select(
                col(TrueUpDay.campaign_id).label("campaign_id"),
                col(TrueUpDay.account_id).label("account_id"),
                sa.func.sum(col(TrueUpDay.posted_fen)).label("net"),
            )
            .where(*filters)
            .group_by(col(TrueUpDay.campaign_id), col(TrueUpDay.account_id))
            .subquery()
        )
        query = (
            sa.select(
                nets.c.campaign_id,
                sa.func.sum(sa.case((nets.c.net > 0, nets.c.net), else_=0)),
                sa.func.sum(sa.case((nets.c.net < 0, -nets.c.net), else_=0)),
                sa.func.count(),
            )
            .where(nets.c.net != 0)
            .group_by(nets.c.campaign_id)
        )
        return {
            int(campaign): (int(up or 0), int(down or 0), int(accounts))
            for campaign, up, down, accounts in self.session.execute(query).all()
        }


OPEN_STATUSES = frozenset(str(s) for s in OPEN)
