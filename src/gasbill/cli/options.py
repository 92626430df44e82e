"""Options every command shares, and how commands fail."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from gasbill.config import ConfigError, Settings, load_settings

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Configuration file (default: $GASBILL_CONFIG, then ./config.toml).",
        dir_okay=False,
    ),
]

err_console = Console(stderr=True)

USAGE_ERROR = 2


def fail(message: str, code: int = USAGE_ERROR) -> NoReturn:
    """One clear line on stderr, and a non-zero exit."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def settings_from(path: Path | None) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        fail(str(exc))
