"""The vendor document's own JSON samples (tests/fixtures/vendor), read with exact decimals.

Both readings of the document test against these: gasbill's codec and client,
and the simulator (iotsim).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

VENDOR = Path(__file__).resolve().parent / "fixtures" / "vendor"


def sample(name: str) -> Any:
    """The sample of that name (the file name without `.json`), e.g. `4.2.4-get-model-reply`."""
    text = (VENDOR / f"{name}.json").read_text(encoding="utf-8")
    return json.loads(text, parse_float=Decimal)


def sample_text(name: str) -> str:
    return (VENDOR / f"{name}.json").read_text(encoding="utf-8")


DOC = sample("4.3-4.5.3-command-structures")
COMMAND_TYPES: dict[str, list[str]] = DOC["command_types"]
STRUCTURES: dict[str, dict[str, str]] = DOC["structures"]

# a value of each C# type of §4.5.3, as the application would send it
VALUE_OF_TYPE: dict[str, Any] = {
    "decimal": Decimal("3.5"),
    "double": Decimal("12.5"),
    "int": 2,
    "UInt32": 300,
    "DateTime": "2025-01-01T00:00:00",
    "string": "",
}


def example(structure: str) -> dict[str, Any]:
    """An object with exactly the fields the document gives `structure`, each a plausible value."""
    return {name: VALUE_OF_TYPE[kind] for name, kind in STRUCTURES[structure].items()}
