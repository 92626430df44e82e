"""Templates and the formats every page shares: yuan with two decimals, m³ with three, local time.

One Jinja2 environment per language, with that language's catalog
installed for `_()` / `{% trans %}`. Autoescaping is on for every template.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from gasbill.api.deps import context
from gasbill.domain.money import Money, Volume
from gasbill.web import i18n
from gasbill.web.capitals import amount_in_capitals
from gasbill.web.session import CSRF, csrf_token, csrf_value, may, session_identity, set_cookie

PREFIX = "/ui"


def yuan(fen: int | None) -> str:
    """Fen as yuan with two decimals and thousands separators: 123456 → 1,234.56."""
    if fen is None:
        return "—"
    return f"{Money.of_fen(int(fen)).value:,.2f}"


def yuan_value(value: Decimal | Money | str | None) -> str:
    if value is None or value == "":
        return "—"
    amount = value.value if isinstance(value, Money) else Decimal(str(value))
    return f"{amount:,.2f}"


def cubic(litres: int | None) -> str:
    """Litres as m³ with three decimals: 12345 → 12.345."""
    if litres is None:
        return "—"
    return f"{Volume.of_litres(int(litres)).value:,.3f}"


def cubic_value(value: Decimal | Volume | str | None) -> str:
    if value is None or value == "":
        return "—"
    amount = value.value if isinstance(value, Volume) else Decimal(str(value))
    return f"{amount:,.3f}"


def plain(value: object) -> object:
    """A Money, Volume or Price as its Decimal; anything else as it is."""
    return getattr(value, "value", value)


@cache
def environment(language: str) -> Environment:
    env = Environment(
        loader=PackageLoader("gasbill.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        yuan=yuan,
        yuan_value=yuan_value,
        m3=cubic,
        m3_value=cubic_value,
        capitals=amount_in_capitals,
        plain=plain,
    )
    return env


def language_of(request: Request) -> str:
    return i18n.pick(request.cookies.get(i18n.COOKIE))


def gettext(request: Request, message: str) -> str:
    return i18n.translations(language_of(request)).gettext(message)


def local_time(request: Request) -> Any:
    zone = ZoneInfo(context(request).settings.app.timezone)

    def show(value: datetime | date | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        if value is None or value == "":
            return "—"
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if isinstance(value, datetime):
            return value.astimezone(zone).strftime(fmt)
        return value.isoformat()

    return show


def render(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    language = language_of(request)
    identity = session_identity(request)
    ctx = context(request)
    role = identity.role if identity else None
    page = (
        environment(language)
        .get_template(template)
        .render(
            request=request,
            user=identity,
            lang=language,
            languages=i18n.LANGUAGES,
            csrf=csrf_token(ctx, csrf_value(request)),
            may=lambda method, path: may(role, method, PREFIX + path),
            local=local_time(request),
            zone=ctx.settings.app.timezone,
            now=ctx.clock(),
            P=PREFIX,
            **values,
        )
    )
    response = HTMLResponse(page, status)
    new = getattr(request.state, "new_csrf", None)
    if new:
        set_cookie(request, response, CSRF, new)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; form-action 'self'; frame-ancestors 'none'"
    )
    return response
