"""The `gasbill` command (`root.app`), loaded on first use.

Importing a single command's module loads only what that command needs: the
demo spawns `python -m gasbill.cli.simulate`, which imports the simulator and
not the rest of gasbill (2.5 s of start-up saved per spawn).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

    app: typer.Typer


def __getattr__(name: str) -> object:
    if name == "app":
        from gasbill.cli.root import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    from gasbill.cli.root import main as run

    run()
