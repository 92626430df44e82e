"""The simulator's settings: the fleet, the platform's credentials, faults and the push target.

Read from a TOML file by `gasbill simulate --config PATH`: the keys below at
the top level or under a `[simulator]` table, with `[faults]` and `[push]`
(or `[simulator.faults]`, `[simulator.push]`) sub-tables.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from iotsim.faults import FaultSettings
from iotsim.pusher import PushTarget

VENDOR_KEY = "496d1bac094f11e79d9c0a0027000010"


class SimulatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 1
    meters: int = Field(default=10, ge=0, le=1_000_000)  # a utility's fleet (bench/night.py)
    # where simulated time starts; a time without an offset is in `zone`
    start: datetime = datetime(2025, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    zone: str = "Asia/Shanghai"  # the platform's and the meters' local time
    company_no: str = "1001"
    comm_no_prefix: str = "8860"  # generated comm_nos: the prefix, then a padded number
    step_minutes: int = Field(default=60, ge=1, le=1440)  # the world moves in steps of this
    realtime_readings: bool = False  # also send a real-time reading (data_type 0) at wake-up
    low_balance: Decimal = Field(default=Decimal("20"), ge=0)  # yuan: the alarm threshold
    magnetic_attack_per_day: Decimal = Field(default=Decimal("0.002"), ge=0, le=1)
    # remote control (§2.2.2)
    login_name: str = "admin"
    password: SecretStr = SecretStr("123456")
    token_lifetime_seconds: int = Field(default=7_200, ge=1)
    token_clock: Literal["simulated", "wall"] = "simulated"
    default_timeout_hours: int = Field(default=72, ge=1)  # when an Add names no ctrl_timeout
    # query mode (§2.2.1): the key the application uses to query this platform
    data_api_key: str = VENDOR_KEY
    # the control API (/_sim/): when set, its calls must carry this in the X-Sim-Key header
    control_key: SecretStr | None = None
    faults: FaultSettings = FaultSettings()
    push: PushTarget = PushTarget()

    @field_validator("zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("step_minutes")
    @classmethod
    def _step(cls, value: int) -> int:
        if 1440 % value:
            raise ValueError("step_minutes must divide a day (1440 minutes)")
        return value

    @field_validator("company_no")
    @classmethod
    def _company(cls, value: str) -> str:
        if len(value) != 4 or not value.isdigit():
            raise ValueError("company_no must be 4 digits")
        return value

    @field_validator("comm_no_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value.isdigit() or len(value) > 8:
            raise ValueError("comm_no_prefix must be up to 8 digits")
        return value

    @model_validator(mode="after")
    def _aware_start(self) -> SimulatorSettings:
        if self.start.tzinfo is None:
            object.__setattr__(self, "start", self.start.replace(tzinfo=ZoneInfo(self.zone)))
        return self

    def with_changes(self, **changes: Any) -> SimulatorSettings:
        return self.model_validate({**self.model_dump(), **changes})


def load_simulator_settings(path: Path) -> SimulatorSettings:
    """Settings from a TOML file (ValueError naming the file and the problem)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    section = data.get("simulator", data)
    try:
        return SimulatorSettings.model_validate(section)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
