"""The `gasbill` command."""

from __future__ import annotations

import typer

from gasbill.cli import demo, quote, tariffs

app = typer.Typer(
    name="gasbill",
    help="Prepaid gas billing and ladder tariffs for IoT gas meters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("quote")(quote.quote_command)
app.command("demo")(demo.demo_command)
app.add_typer(tariffs.app, name="tariff")


def main() -> None:
    app()
