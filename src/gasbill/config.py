"""Settings: config.toml, overridden by GASBILL_<SECTION>__<KEY> environment variables.

Which file: `--config PATH` on any command, else $GASBILL_CONFIG, else
./config.toml; with none of them the defaults below apply. Every setting is
documented where it is set, in config.toml.
"""

from __future__ import annotations

import os
import tomllib
from datetime import date, time
from decimal import Decimal
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.settings import PlatformSettings
from gasbill.domain.audit import DEMO_AUDIT_KEY
from gasbill.domain.money import MoneyLimits
from gasbill.secret import Secret

CONFIG_ENV = "GASBILL_CONFIG"
DEFAULT_CONFIG = Path("config.toml")
# The placeholder secret: accepted only in the demo environment.
DEMO_SECRET = "change-me-demo-only"
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The configuration cannot be read; the message says which file and setting."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


class AppSettings(_Section):
    environment: Literal["demo", "development", "production"] = "demo"
    timezone: str = "Asia/Shanghai"
    platform_timezone: str = "Asia/Shanghai"
    secret_key: SecretStr = SecretStr(DEMO_SECRET)
    audit_key: SecretStr = SecretStr(DEMO_AUDIT_KEY)

    _check_zones = field_validator("timezone", "platform_timezone")(_zone)

    def insecure_secret(self) -> str | None:
        """Why a secret cannot be used in this environment, or None if they all can."""
        if self.environment == "demo":
            return None
        for name, secret, placeholder in (
            ("secret_key", self.secret_key, DEMO_SECRET),
            ("audit_key", self.audit_key, DEMO_AUDIT_KEY),
        ):
            value = secret.get_secret_value()
            if value == placeholder:
                return (
                    f"[app] {name} is the demo placeholder, refused in environment "
                    f"{self.environment!r}: set GASBILL_APP__{name.upper()} to a long random value"
                )
            if len(value) < MIN_SECRET_LENGTH:
                return (
                    f"[app] {name} must be at least {MIN_SECRET_LENGTH} characters "
                    f"in environment {self.environment!r}"
                )
        return None


class DatabaseSettings(_Section):
    url: Annotated[str, Secret("dsn")] = "sqlite:///var/gasbill.db"
    echo: bool = False


class TariffSettings(_Section):
    dir: Path = Path("tariffs")


class RatingSettings(_Section):
    max_flow_m3_per_hour: Decimal = Field(default=Decimal("10"), gt=0)


class StaffSettings(_Section):
    token_ttl_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    login_max_failures: int = Field(default=5, ge=1)  # per username
    login_max_failures_per_client: int = Field(default=30, ge=1)  # per client address
    login_window_minutes: int = Field(default=15, ge=1)
    # addresses (or networks, CIDR) of the reverse proxies whose X-Forwarded-For is believed
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for item in value:
            try:
                ip_network(item, strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an address or network"
                ) from None
        return value


class AuditSettings(_Section):
    """Where the audit log's head is anchored, outside the database."""

    # "" : next to a SQLite database file (<file>.audit-anchor); none for PostgreSQL
    anchor_file: str = ""


class CommandSettings(_Section):
    timeout_hours: int = Field(default=72, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    backoff_base_minutes: int = Field(default=5, ge=1)
    backoff_cap_minutes: int = Field(default=360, ge=1)
    lookup_after_minutes: int = Field(default=10, ge=1)
    poll_after_minutes: int = Field(default=360, ge=1)
    batch_size: int = Field(default=50, ge=1, le=500)


class JobSchedule(_Section):
    """One scheduled job: whether it runs, and every how many seconds."""

    enabled: bool = True
    interval_seconds: int = Field(default=60, ge=1)


class QueryPollSchedule(JobSchedule):
    """Query mode: pull readings, alarms and events from a platform that does not push."""

    enabled: bool = False
    interval_seconds: int = Field(default=900, ge=1)
    base_url: Annotated[str, Secret("url")] = Field(default="", validate_default=True)
    data_api_key: SecretStr = SecretStr("")  # empty: [push] keys[platform.company_no]
    lookback_hours: int = Field(default=48, ge=0)
    page_size: int = Field(default=500, ge=1, le=1000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str, info: Any) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http(s) URL, not {value!r}")
        if not value and info.data.get("enabled"):
            raise ValueError("query mode is enabled but has no base_url")
        return value


class ReconcileSchedule(JobSchedule):
    """The nightly reconciliation: its totals logged; the report kept in `report_dir` if set."""

    interval_seconds: int = Field(default=86_400, ge=1)
    report_dir: str = ""


class ReconcileSettings(_Section):
    """How a reconciliation reads (`gasbill reconcile`, the nightly job): on PostgreSQL, its
    ranges of accounts on this many connections at once, every one seeing the same instant
    (1: one connection). SQLite reads on one whatever this says."""

    connections: int = Field(default=2, ge=1, le=16)


class TrueUpSchedule(JobSchedule):
    """The price-change true-up: tariff in force minus what the shadow billing posted."""

    interval_seconds: int = Field(default=86_400, ge=1)
    batch: int = Field(default=200, ge=1)  # accounts per transaction
    settled_after_days: int = Field(default=31, ge=0)  # after the cycle the divergence ended in


# "gasbill" as a number: the PostgreSQL advisory lock of scheduler leadership
DEFAULT_LEADER_LOCK_KEY = int.from_bytes(b"gasbill", "big")


class JobSettings(_Section):
    """The scheduler (`gasbill serve`): which jobs run, how often, and who leads."""

    scheduler: bool = True
    advisory_lock_key: int = Field(default=DEFAULT_LEADER_LOCK_KEY, ge=-(2**63), le=2**63 - 1)
    misfire_grace_seconds: int = Field(default=60, ge=1)
    inbox_batch: int = Field(default=1000, ge=1)
    slice_seconds: int = Field(default=20, ge=1)  # a run drains its queue for at most this long
    notify_batch: int = Field(default=100, ge=1)
    query_poll: QueryPollSchedule = QueryPollSchedule()
    inbox: JobSchedule = JobSchedule(interval_seconds=30)
    decisions: JobSchedule = JobSchedule(interval_seconds=600)
    campaigns: JobSchedule = JobSchedule(interval_seconds=60)
    dispatch: JobSchedule = JobSchedule(interval_seconds=15)
    poll_silent: JobSchedule = JobSchedule(interval_seconds=300)
    notify: JobSchedule = JobSchedule(interval_seconds=60)
    reconcile: ReconcileSchedule = ReconcileSchedule()
    audit_anchor: JobSchedule = JobSchedule(interval_seconds=60)
    true_up: TrueUpSchedule = TrueUpSchedule()

    @field_validator(
        "query_poll",
        "inbox",
        "decisions",
        "campaigns",
        "dispatch",
        "poll_silent",
        "notify",
        "reconcile",
        "audit_anchor",
        "true_up",
        mode="before",
    )
    @classmethod
    def _over_default(cls, value: Any, info: Any) -> Any:
        # `[jobs.dispatch] enabled = false` keeps dispatch's own interval, not the generic one
        default = cls.model_fields[info.field_name].default
        if isinstance(value, dict) and isinstance(default, JobSchedule):
            return {**dict(default), **value}
        return value


class DecisionSettings(_Section):
    """Low-balance warnings and valve actions (DESIGN §7); amounts in fen, local times."""

    warning_fen: int = Field(default=2000, ge=0)
    warning_days: int = Field(default=3, ge=0)
    rearm_margin_fen: int = Field(default=500, ge=0)
    rearm_days_margin: int = Field(default=1, ge=0)
    cutoff_allowance_fen: int = Field(default=0, ge=0)
    grace_hours: Decimal = Field(default=Decimal("24"), ge=0)
    quiet_hours_start: time | None = time(18)
    quiet_hours_end: time | None = time(8)
    holidays: tuple[date, ...] = ()
    quiet_weekdays: tuple[int, ...] = ()
    sync_display_with_setremain: bool = False
    meter_reading_stale_hours: Decimal = Field(default=Decimal("48"), gt=0)

    @field_validator("quiet_hours_start", "quiet_hours_end", mode="before")
    @classmethod
    def _no_time(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("quiet_weekdays")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not set(value) <= set(range(7)):
            raise ValueError(f"quiet_weekdays are 0 (Monday) to 6 (Sunday), not {list(value)}")
        if len(set(value)) == 7:
            raise ValueError("quiet_weekdays cover the whole week: a valve could never close")
        return value

    @model_validator(mode="after")
    def _quiet_hours(self) -> DecisionSettings:
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if (start is None) != (end is None):
            raise ValueError('quiet_hours_start and quiet_hours_end are set together (or both "")')
        if start is not None and start == end:
            raise ValueError("quiet_hours_start and quiet_hours_end must differ")
        return self


class NotifySettings(_Section):
    """How recorded low-balance warnings reach customers."""

    channel: Literal["log", "webhook"] = "log"
    webhook_url: Annotated[str, Secret("host")] = ""
    timeout_seconds: Decimal = Field(default=Decimal("10"), gt=0)
    max_attempts: int = Field(default=10, ge=1)
    retry_base_seconds: int = Field(default=60, ge=1)
    retry_cap_seconds: int = Field(default=3600, ge=1)

    @model_validator(mode="after")
    def _url(self) -> NotifySettings:
        url = self.webhook_url
        if url and not url.startswith(("http://", "https://")):
            raise ValueError(f"webhook_url must be an http(s) URL, not {url!r}")
        if self.channel == "webhook" and not url:
            raise ValueError('channel is "webhook" but webhook_url is empty')
        return self


def _yuan_to_fen(value: Decimal) -> int:
    fen = value * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{value} yuan is finer than a fen")
    return int(fen)


class MoneySettings(_Section):
    """The most one operation may move, in yuan; above it the request is refused (422)."""

    max_payment_yuan: Decimal = Field(default=Decimal("5000"), gt=0, le=Decimal("10000000"))
    max_refund_yuan: Decimal = Field(default=Decimal("10000"), gt=0, le=Decimal("10000000"))
    max_adjustment_yuan: Decimal = Field(default=Decimal("10000"), gt=0, le=Decimal("10000000"))
    max_top_up_yuan: Decimal = Field(default=Decimal("5000"), gt=0, le=Decimal("10000000"))

    @field_validator("*")
    @classmethod
    def _whole_fen(cls, value: Decimal) -> Decimal:
        _yuan_to_fen(value)
        return value

    def limits(self) -> MoneyLimits:
        return MoneyLimits(
            payment_fen=_yuan_to_fen(self.max_payment_yuan),
            refund_fen=_yuan_to_fen(self.max_refund_yuan),
            adjustment_fen=_yuan_to_fen(self.max_adjustment_yuan),
            top_up_fen=_yuan_to_fen(self.max_top_up_yuan),
        )


class Settings(BaseSettings):
    """Every section of config.toml; each documented there, in place."""

    model_config = SettingsConfigDict(
        env_prefix="GASBILL_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    app: AppSettings = AppSettings()
    database: DatabaseSettings = DatabaseSettings()
    tariffs: TariffSettings = TariffSettings()
    rating: RatingSettings = RatingSettings()
    staff: StaffSettings = StaffSettings()
    push: PushSettings = PushSettings()
    platform: PlatformSettings = PlatformSettings()
    commands: CommandSettings = CommandSettings()
    jobs: JobSettings = JobSettings()
    decisions: DecisionSettings = DecisionSettings()
    notify: NotifySettings = NotifySettings()
    money: MoneySettings = MoneySettings()
    audit: AuditSettings = AuditSettings()
    reconcile: ReconcileSettings = ReconcileSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values come in as init arguments; the environment beats them.
        return (env_settings, init_settings)


def config_path(explicit: Path | None = None) -> Path | None:
    """The file to read: --config, else $GASBILL_CONFIG, else ./config.toml if present."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(explicit: Path | None = None) -> Settings:
    path = config_path(explicit)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    try:
        return Settings(**data)
    except ValueError as exc:  # pydantic's ValidationError
        raise ConfigError(f"{path or 'settings'}: {_describe(exc)}") from None


def _describe(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    parts = []
    for error in errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
