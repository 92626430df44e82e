"""Settings: config.toml, overridden by GASBILL_<SECTION>__<KEY> environment variables.

Which file: `--config PATH` on any command, else $GASBILL_CONFIG, else
./config.toml; with none of them the defaults below apply. Every setting is
documented where it is set, in config.toml.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.adapters.platform.settings import PlatformSettings

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

    _check_zones = field_validator("timezone", "platform_timezone")(_zone)

    def insecure_secret(self) -> str | None:
        """Why the secret cannot be used in this environment, or None if it can."""
        if self.environment == "demo":
            return None
        secret = self.secret_key.get_secret_value()
        if secret == DEMO_SECRET:
            return (
                f"[app] secret_key is the demo placeholder, refused in environment "
                f"{self.environment!r}: set GASBILL_APP__SECRET_KEY to a long random value"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            return (
                f"[app] secret_key must be at least {MIN_SECRET_LENGTH} characters "
                f"in environment {self.environment!r}"
            )
        return None


class DatabaseSettings(_Section):
    url: str = "sqlite:///var/gasbill.db"
    echo: bool = False


class TariffSettings(_Section):
    dir: Path = Path("tariffs")


class RatingSettings(_Section):
    max_flow_m3_per_hour: Decimal = Field(default=Decimal("10"), gt=0)


class StaffSettings(_Section):
    token_ttl_minutes: int = Field(default=480, ge=1, le=60 * 24 * 30)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)


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
