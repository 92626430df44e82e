"""Tariff files (`tariffs/*.toml`) read into domain tariffs, validated."""

from gasbill.adapters.tariffs.loader import (
    TariffFileError,
    TariffNotFound,
    find_tariff,
    list_tariffs,
    load_tariff,
)

__all__ = ["TariffFileError", "TariffNotFound", "find_tariff", "list_tariffs", "load_tariff"]
