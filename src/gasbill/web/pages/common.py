"""What the page modules share: their context, redirects, and running a use case for a form."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse

from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.deps import AppContext, context
from gasbill.domain.errors import GasbillError
from gasbill.web.forms import FormProblem
from gasbill.web.render import PREFIX

T = TypeVar("T")


def ctx_of(request: Request) -> AppContext:
    return context(request)


def uow_of(request: Request) -> UnitOfWork:
    return UnitOfWork(context(request).engine)


def go(path: str) -> RedirectResponse:
    """After a change: see the result with a GET (post/redirect/get)."""
    return RedirectResponse(PREFIX + path, status_code=303)


def safe_next(target: str | None) -> str:
    """Only a page of ours: no open redirect to another site."""
    if not target:
        return PREFIX + "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/"):
        return PREFIX + "/"
    return target


def attempt(run: Callable[[], T]) -> tuple[T | None, str | None]:
    """Run a use case; a refusal (bad input, a rule broken) comes back as its message."""
    try:
        return run(), None
    except (FormProblem, GasbillError) as exc:
        return None, str(exc)


def form_text(form: Any, name: str, default: str = "") -> str:
    value = form.get(name, default)
    return value.strip() if isinstance(value, str) else default
