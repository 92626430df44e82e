"""The demo's story: a fleet of households over two months, told through the real services.

Most households bill on their meters (表端计费): a clerk opens each account
with a first payment that reaches the meter as `openaccount`, and tops it up
when the money runs low. A few bill on the platform (平台计费): one of them
runs dry, is warned, has its valve closed and reopened after paying. Half-way
through, the tariff changes and a campaign takes the new prices to every
meter. One command reply is lost on the way and settled.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal

from gasbill.adapters.db.repositories.commands import CommandStore
from gasbill.demo.world import World
from gasbill.domain.accounts import BillingMode
from gasbill.domain.outbox import OPEN, CommandStatus
from gasbill.service.true_up import TrueUpOutcome, run_true_ups
from iotsim.faults import FaultSettings

TARIFF = "price-change-example"  # a mid-cycle price change on 2025-07-01
START = datetime.fromisoformat("2025-06-01T09:00:00+08:00")
OPENING_FEN = 10_000  # the first payment: 100 yuan
TOP_UP_FEN = 10_000
LOW_FEN = 3_000  # a clerk tops up a meter showing less than 30 yuan
DRY_OPENING_FEN = 1_500  # the household that runs dry starts with 15 yuan
BAD_DAY_TOP_UPS = 3  # top-ups on their way when the network goes bad (some queued early)


@dataclass
class Cast:
    meter_accounts: dict[str, int] = field(default_factory=dict)
    system_accounts: dict[str, int] = field(default_factory=dict)
    dry: tuple[str, int] | None = None
    dry_paid: bool = False
    payments: int = 0


def open_accounts(world: World, rng: random.Random) -> Cast:
    cast = Cast()
    comm_nos = world.sim.comm_nos()
    system_share = max(2, len(comm_nos) // 10)
    for i, comm_no in enumerate(comm_nos):
        mode = BillingMode.SYSTEM if i < system_share else BillingMode.METER
        dry = i == 0
        opened = world.open_account(
            comm_no,
            number=f"D{i + 1:04d}",
            tariff_id=TARIFF,
            mode=mode,
            initial_fen=DRY_OPENING_FEN if dry else OPENING_FEN,
            persons=rng.choice((1, 2, 3, 3, 4, 5)),
            warning_fen=2_000,
            cutoff_fen=0,
            reopen_fen=1_000,
        )
        account_id = opened.account.id
        assert account_id is not None
        (cast.system_accounts if mode is BillingMode.SYSTEM else cast.meter_accounts)[comm_no] = (
            account_id
        )
        if dry:
            cast.dry = (comm_no, account_id)
    return cast


def daily_clerk(world: World, cast: Cast, days_run: int, *, pay_dry_after: int) -> None:
    """Once a day, at the counter: top up the meters running low; the dry household pays."""
    for comm_no, account_id in cast.meter_accounts.items():
        if world.sim.meter(comm_no).balance * 100 < LOW_FEN and not _top_up_waiting(
            world, account_id
        ):
            world.pay(account_id, TOP_UP_FEN, key=f"top-up-{comm_no}-{days_run}")
            cast.payments += 1
    if cast.dry is not None and days_run >= pay_dry_after and not cast.dry_paid:
        world.pay(cast.dry[1], 20_000, key="dry-household-pays")
        cast.dry_paid = True
        cast.payments += 1


def _top_up_waiting(world: World, account_id: int) -> bool:
    with world.uow() as uow:
        return any(
            CommandStatus(c.status) in OPEN or c.status == CommandStatus.UNKNOWN
            for c in CommandStore(uow.session).of_account(account_id, 10)
        )


def run(
    world: World,
    *,
    days: int,
    seed: int,
    faults: FaultSettings,
    on_day: Callable[[int], None] = lambda day: None,
) -> Cast:
    """The days at the counter and on the network.

    With the default faults, one bad day on the network (replies lost,
    top-ups applied but reported timed out) follows the first morning the
    clerk queued top-ups (from day 3 on, or by the latest day), with at
    least three on their way (households with little left top up early), so
    that it strikes commands in flight however short the run.
    """
    rng = random.Random(seed)
    cast = open_accounts(world, rng)
    latest_bad = max(3, days * 2 // 5)
    pay_dry_after = max(latest_bad + 5, days * 2 // 3)
    bad_next = False
    bad_done = faults != FaultSettings()
    for day in range(1, days + 1):
        bad, bad_next = bad_next, False
        if bad:
            world.sim.set_faults(
                FaultSettings(lost_reply=Decimal("0.5"), applied_timeout=Decimal("0.5"))
            )
        until = datetime.combine((START + timedelta(days=day)).date(), time(9), START.tzinfo)
        world.advance(until)
        if bad:
            world.sim.set_faults(faults)
            bad_done = True
        before = cast.payments
        daily_clerk(world, cast, day, pay_dry_after=pay_dry_after)
        if not bad_done and day >= 3 and (cast.payments > before or day >= latest_bad):
            for early in range(BAD_DAY_TOP_UPS - (cast.payments - before)):
                _early_top_up(world, cast, day, early)
            bad_next = True
        on_day(day)
    return cast


def _early_top_up(world: World, cast: Cast, day: int, rank: int) -> None:
    """A meter-mode household with little left (the `rank`-th least) tops up early."""
    if not cast.meter_accounts:
        return  # every household bills on the platform: no top-ups to send
    by_balance = sorted(
        cast.meter_accounts.items(), key=lambda item: world.sim.meter(item[0]).balance
    )
    comm_no, account_id = by_balance[rank % len(by_balance)]
    if _top_up_waiting(world, account_id):
        return
    world.pay(account_id, TOP_UP_FEN, key=f"early-top-up-{comm_no}-{day}")
    cast.payments += 1


def settle(world: World) -> TrueUpOutcome:
    """A last quiet day: every meter wakes once more, reports, and everything is billed.

    Then the price-change true-up runs once more (the daily job's run may
    have come before the last readings were billed), as staff would run it
    before closing the books.
    """
    world.advance(world.now + timedelta(days=1))
    return run_true_ups(
        world.uow,
        catalog=world.catalog,
        now=world.now,
        max_flow_m3_per_hour=world.settings.rating.max_flow_m3_per_hour,
        actor="demo",
    )
