"""The errors a tariff file raises: a broken file, and a tariff that is not there."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gasbill.domain.errors import TariffError


class TariffFileError(TariffError):
    """A tariff file that cannot be read or breaks a rule.

    `problems` holds (field, rule) pairs; the field is None when the problem
    is the file as a whole. The message has one `file: field: rule` line each.
    """

    def __init__(self, file: str, problems: Sequence[tuple[str | None, str]]) -> None:
        self.file = file
        self.problems: tuple[tuple[str | None, str], ...] = tuple(problems)
        lines = [
            f"{file}: {rule}" if field is None else f"{file}: {field}: {rule}"
            for field, rule in self.problems
        ]
        super().__init__("\n".join(lines))

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.problems))

    @property
    def field(self) -> str | None:
        return self.problems[0][0] if self.problems else None

    @property
    def rule(self) -> str:
        return self.problems[0][1] if self.problems else ""


class TariffNotFound(TariffError):
    """No tariff file with that id (or at that path)."""

    def __init__(self, wanted: str, directory: Path, available: Sequence[str]) -> None:
        self.wanted = wanted
        self.directory = directory
        self.available = tuple(available)
        listed = ", ".join(self.available) if self.available else "none"
        super().__init__(
            f"no tariff {wanted!r}: not a .toml file nor a tariff id in {directory} "
            f"(available: {listed})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.wanted, self.directory, self.available))
