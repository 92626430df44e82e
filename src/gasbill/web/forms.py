"""Form fields to the API's own request models, so a page accepts exactly what the API does.

Clerks type amounts in yuan; they become whole fen here (at most two
decimals, never through a float) and then pass the same pydantic model as a
JSON request would. Problems come back as one line per field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from gasbill.domain.errors import GasbillError

Model = TypeVar("Model", bound=BaseModel)
YUAN = re.compile(r"^-?[0-9]{1,16}(\.[0-9]{1,2})?$")


class FormProblem(ValueError):
    """What is wrong with a form, in words for the person who filled it in."""


def fen_from_yuan(text: str, field: str = "amount") -> int:
    """'1,234.5' → 123450; more than two decimals or anything but a number is refused."""
    cleaned = text.strip().replace(",", "").replace("，", "")
    if not YUAN.fullmatch(cleaned):
        raise FormProblem(f"{field}: yuan with at most two decimals, e.g. 100 or 88.50")
    try:
        return int(Decimal(cleaned).scaleb(2))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise FormProblem(f"{field}: not a number") from exc


def validated(model: type[Model], values: Mapping[str, Any]) -> Model:
    """The API's model of these values, or FormProblem naming each field's problem."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()))
            message = str(error.get("msg", "")).removeprefix("Value error, ")
            lines.append(f"{where}: {message}" if where else message)
        raise FormProblem("; ".join(lines)) from exc


def problem_text(exc: Exception) -> str:
    """A refused request's message: a form problem, or the use case's own words."""
    if isinstance(exc, FormProblem | GasbillError):
        return str(exc)
    return "the request was refused"
