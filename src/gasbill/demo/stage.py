"""The demo's stage: the product on its socket, the platform in its process, and the staff.

`Stage.build` starts `gasbill simulate` (pushing to the product), the app on
the port the demo serves on afterwards, and logs the staff in; `advance`
moves simulated time in both; `close` stops what it started. The tariff the
story changes is held back in a copy of the tariffs directory until an admin
publishes the change (writes the file, then reloads the tariffs over HTTP).
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from gasbill.config import Settings, TariffSettings
from gasbill.demo.platform import SimulatorProcess, write_settings
from gasbill.demo.product import DemoClock, Product, advance, demo_settings
from gasbill.demo.staff import Clerk, Desk, staff_logins
from iotsim.faults import FaultSettings

COMPANY_NO = "1001"  # the simulated platform's company


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class HeldTariff:
    """A tariff file whose last version (the price change) waits for an admin to publish it."""

    path: Path
    full_text: str

    @classmethod
    def hold(cls, source_dir: Path, target_dir: Path, tariff_id: str) -> HeldTariff:
        if target_dir.exists():
            shutil.rmtree(target_dir)
        shutil.copytree(source_dir, target_dir)
        path = target_dir / f"{tariff_id}.toml"
        text = path.read_text(encoding="utf-8")
        before, _, _ = text.rpartition("[[versions]]")
        if "[[versions]]" not in before:
            raise ValueError(f"{path}: the demo needs a tariff with a price change")
        path.write_text(before.rstrip() + "\n", encoding="utf-8")
        return cls(path, text)

    def publish(self) -> None:
        self.path.write_text(self.full_text, encoding="utf-8")


@dataclass(eq=False)
class Stage:
    product: Product
    simulator: SimulatorProcess
    logins: dict[str, str]
    clerk: Clerk
    admin: Desk
    auditor: Desk
    tariff: HeldTariff
    now: datetime
    step: timedelta = timedelta(days=1)
    first_step: timedelta = timedelta(minutes=10)
    closed: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        db_url: str,
        work_dir: Path,
        host: str,
        port: int,
        seed: int,
        meters: int,
        start: datetime,
        faults: FaultSettings,
        tariff_id: str,
    ) -> Stage:
        work_dir.mkdir(parents=True, exist_ok=True)
        tariff = HeldTariff.hold(settings.tariffs.dir, work_dir / "tariffs", tariff_id)
        sim_port = free_port()
        settings = demo_settings(
            settings.model_copy(update={"tariffs": TariffSettings(dir=tariff.path.parent)}),
            db_url=db_url,
            platform_url=f"http://127.0.0.1:{sim_port}/",
            company_no=COMPANY_NO,
        )
        simulator = SimulatorProcess(
            write_settings(
                work_dir / "simulator.toml", seed=seed, meters=meters, start=start, faults=faults
            ),
            port=sim_port,
            push_to=f"http://{host}:{port}/",
            log=work_dir / "simulator.log",
        )
        try:
            product = Product.start(settings, clock=DemoClock(start), host=host, port=port)
        except BaseException:
            simulator.close()
            raise
        try:
            simulator.wait_ready()
            logins = staff_logins(product.services, product.url)
            return cls(
                product,
                simulator,
                logins,
                Clerk(product.url, "clerk", logins["clerk"]),
                Desk(product.url, "admin", logins["admin"]),
                Desk(product.url, "auditor", logins["auditor"]),
                tariff,
                start,
            )
        except BaseException:
            simulator.close()
            product.close()
            raise

    def advance(self, until: datetime, *, step: timedelta | None = None) -> None:
        self.now = advance(
            self.product,
            self.simulator,
            until,
            step=step or self.step,
            first=step or self.first_step,
            now=self.now,
        )

    def publish_tariff_change(self) -> list[dict[str, object]]:
        """The admin writes the new version into the tariff file and reloads the tariffs."""
        self.tariff.publish()
        reloaded: list[dict[str, object]] = self.admin.post("/tariffs/reload")
        return reloaded

    def close(self) -> None:
        for desk in (self.clerk, self.admin, self.auditor):
            desk.close()
        self.simulator.close()
        self.product.close()
