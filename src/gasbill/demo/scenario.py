"""The demo's story: a fleet of households over two months, told through the product's doors.

Most households bill on their meters (表端计费): a clerk opens each account
with a first payment that reaches the meter as `openaccount`, and tops it up
when a household comes in with little left on its meter's display. A few
bill on the platform (平台计费): one of them runs dry, is warned, has its
valve closed and reopened after paying. A week before the tariff's price
change an admin publishes it; a campaign takes the new prices to every
meter, and an auditor runs the true-up at the end. One day the network is
bad: replies are lost, outcomes unknown, and settled against the meters.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any

from gasbill.demo.staff import payment_key
from gasbill.demo.stage import COMPANY_NO, Stage
from iotsim.faults import FaultSettings

TARIFF = "price-change-example"  # a mid-cycle price change on 2025-07-01
START = datetime.fromisoformat("2025-06-01T09:00:00+08:00")
CHANGE_AT = datetime.fromisoformat("2025-07-01T00:00:00+08:00")
PUBLISH_AHEAD = timedelta(days=7)  # the admin announces the change a week ahead
OPENING_FEN = 10_000  # the first payment: 100 yuan
TOP_UP_FEN = 10_000
LOW_FEN = 3_000  # a household with less than 30 yuan on its meter comes to top up
DRY_OPENING_FEN = 1_500  # the household that runs dry starts with 15 yuan
BAD_DAY_TOP_UPS = 3  # top-ups on their way when the network goes bad (some queued early)
THRESHOLDS = {"warning_fen": 2_000, "cutoff_fen": 0, "reopen_fen": 1_000}


@dataclass
class Cast:
    meter_accounts: dict[str, int] = field(default_factory=dict)
    system_accounts: dict[str, int] = field(default_factory=dict)
    dry: tuple[str, int] | None = None
    dry_paid: bool = False
    payments: int = 0
    published: bool = False
    true_up: dict[str, Any] = field(default_factory=dict)


def open_accounts(stage: Stage, rng: random.Random) -> Cast:
    """The clerk opens an account on every meter, the installer's register as its start."""
    cast = Cast()
    fleet = stage.simulator.meters()
    system_share = max(2, len(fleet) // 10)
    local = stage.now.astimezone(START.tzinfo)
    for i, (comm_no, meter) in enumerate(fleet.items()):
        system = i < system_share
        dry = i == 0
        number = f"D{i + 1:04d}"
        account_id = stage.clerk.open_account(
            customer_id=stage.clerk.new_customer(f"household {number}"),
            number=number,
            company_no=COMPANY_NO,
            mode="system" if system else "meter",
            tariff_id=TARIFF,
            opened_on=local.date(),
            bound_at=stage.now,
            comm_no=comm_no,
            register=str(meter["std_sum"]),
            persons=rng.choice((1, 2, 3, 3, 4, 5)),
            initial_fen=DRY_OPENING_FEN if dry else OPENING_FEN,
            thresholds=THRESHOLDS,
        )
        (cast.system_accounts if system else cast.meter_accounts)[comm_no] = account_id
        if dry:
            cast.dry = (comm_no, account_id)
    return cast


def _fen(yuan: Any) -> Decimal:
    return Decimal(str(yuan)) * 100


def daily_clerk(stage: Stage, cast: Cast, day: int, *, pay_dry_after: int) -> dict[str, Any]:
    """Once a day, at the counter: households whose meters show little left top up; the
    dry household pays. The meters' displays, as the households read them."""
    fleet = stage.simulator.meters()
    for comm_no, account_id in cast.meter_accounts.items():
        if _fen(fleet[comm_no]["balance"]) < LOW_FEN and not stage.clerk.top_up_waiting(account_id):
            stage.clerk.pay(account_id, TOP_UP_FEN, key=payment_key())
            cast.payments += 1
    if cast.dry is not None and day >= pay_dry_after and not cast.dry_paid:
        stage.clerk.pay(cast.dry[1], 20_000, key=payment_key())
        cast.dry_paid = True
        cast.payments += 1
    return fleet


def run(
    stage: Stage,
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
    cast = open_accounts(stage, rng)
    latest_bad = max(3, days * 2 // 5)
    pay_dry_after = max(latest_bad + 5, days * 2 // 3)
    bad_next = False
    bad_done = faults != FaultSettings()
    for day in range(1, days + 1):
        bad, bad_next = bad_next, False
        if bad:
            stage.simulator.set_faults(
                FaultSettings(lost_reply=Decimal("0.5"), applied_timeout=Decimal("0.5"))
            )
        until = datetime.combine((START + timedelta(days=day)).date(), time(9), START.tzinfo)
        stage.advance(until)
        if bad:
            stage.simulator.set_faults(faults)
            bad_done = True
        if not cast.published and stage.now >= CHANGE_AT - PUBLISH_AHEAD:
            stage.publish_tariff_change()
            cast.published = True
        before = cast.payments
        fleet = daily_clerk(stage, cast, day, pay_dry_after=pay_dry_after)
        if not bad_done and day >= 3 and (cast.payments > before or day >= latest_bad):
            for early in range(BAD_DAY_TOP_UPS - (cast.payments - before)):
                _early_top_up(stage, cast, fleet, day, early)
            bad_next = True
        on_day(day)
    return cast


def _early_top_up(stage: Stage, cast: Cast, fleet: dict[str, Any], day: int, rank: int) -> None:
    """A meter-mode household with little left (the `rank`-th least) tops up early."""
    if not cast.meter_accounts:
        return  # every household bills on the platform: no top-ups to send
    by_balance = sorted(
        cast.meter_accounts.items(), key=lambda item: Decimal(str(fleet[item[0]]["balance"]))
    )
    _, account_id = by_balance[rank % len(by_balance)]
    if stage.clerk.top_up_waiting(account_id):
        return
    stage.clerk.pay(account_id, TOP_UP_FEN, key=payment_key())
    cast.payments += 1


def settle(stage: Stage, cast: Cast) -> None:
    """A last quiet day: every meter wakes once more, reports, and everything is billed.

    Then an auditor runs the price-change true-up once more over HTTP (the
    daily job's run may have come before the last readings were billed), as
    staff would before closing the books.
    """
    stage.advance(stage.now + timedelta(days=1))
    cast.true_up = stage.auditor.post("/true-ups")
