"""The tariffs in force, read once from the tariffs directory and kept."""

from __future__ import annotations

from pathlib import Path

from gasbill.adapters.tariffs.errors import TariffNotFound
from gasbill.adapters.tariffs.fields import ID_PATTERN
from gasbill.adapters.tariffs.loader import available_ids, find_tariff, list_tariffs
from gasbill.domain.rating import Rater
from gasbill.domain.tariff import Tariff


class TariffCatalog:
    def __init__(self, directory: Path, default_zone: str) -> None:
        self.directory = directory
        self.default_zone = default_zone
        self._tariffs: dict[str, Tariff] = {}
        self._raters: dict[str, Rater] = {}

    def get(self, tariff_id: str) -> Tariff:
        """The tariff with this id (a file of the directory, never a path elsewhere); raises
        TariffNotFound (a TariffError) if there is none."""
        tariff = self._tariffs.get(tariff_id)
        if tariff is None:
            if not ID_PATTERN.match(tariff_id):
                known = available_ids(self.directory) if self.directory.is_dir() else []
                raise TariffNotFound(tariff_id, self.directory, known)
            tariff = find_tariff(tariff_id, self.directory, default_zone=self.default_zone)
            self._tariffs[tariff_id] = tariff
        return tariff

    def rater(self, tariff_id: str) -> Rater:
        """One rater per tariff, shared: it caches the tariff's timeline."""
        rater = self._raters.get(tariff_id)
        if rater is None:
            rater = Rater(self.get(tariff_id))
            self._raters[tariff_id] = rater
        return rater

    def all(self) -> list[Tariff]:
        return list_tariffs(self.directory, default_zone=self.default_zone)

    def reload(self) -> None:
        self._tariffs.clear()
        self._raters.clear()
