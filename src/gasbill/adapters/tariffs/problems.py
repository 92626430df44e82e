"""Validation and TOML syntax errors turned into (field, rule) problems."""

from __future__ import annotations

import inspect
import re
import tomllib
from collections.abc import Sequence
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from gasbill.adapters.tariffs.fields import toml_kind
from gasbill.adapters.tariffs.schema import TariffModel


def _path(parts: Sequence[int | str]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(path: str, at: str) -> str:
    if not path:
        return at
    return path + at if at.startswith("[") else f"{path}.{at}"


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _allowed_keys(root: type[BaseModel], parent: Sequence[int | str]) -> list[str]:
    model: type[BaseModel] | None = root
    for part in parent:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return []
        model = _submodel(model.model_fields[part].annotation)
    if model is None:
        return []
    keys = list(model.model_fields)
    if model is TariffModel:
        keys.insert(keys.index("versions"), "defaults")
    return keys


_TYPE_NAMES = {
    "model_type": "a table",
    "dict_type": "a table",
    "list_type": "an array",
    "string_type": "a string",
    "bool_type": "true or false",
    "int_type": "a whole number",
}


def _describe(error: ErrorDetails, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, error["loc"][:-1])
        return f"unknown key (allowed here: {', '.join(allowed)})" if allowed else "unknown key"
    if kind in ("too_short", "too_long"):
        actual = ctx.get("actual_length")
        if actual is None and isinstance(value, list):
            actual = len(value)
        bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        entries = "entry" if bound == 1 else "entries"
        return f"must have {word} {bound} {entries}, got {actual}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, not {toml_kind(value)}"
    if kind in _TYPE_NAMES:
        return f"must be {_TYPE_NAMES[kind]}, not {toml_kind(value)}"
    message = error["msg"]
    if message.startswith("Input should be "):
        return f"must be {message.removeprefix('Input should be ')}, not {toml_kind(value)}"
    if message.startswith("Value error, "):
        return message.removeprefix("Value error, ")
    return message


_INHERITED = re.compile(r"versions\[(\d+)\]\.([a-z_]+)")


def validation_problems(
    exc: ValidationError,
    root: type[BaseModel],
    prefix: Sequence[str] = (),
    inherited: Sequence[set[str]] = (),
) -> list[tuple[str | None, str]]:
    problems: list[tuple[str | None, str]] = []
    for error in exc.errors(include_url=False):
        path = _path([*prefix, *error["loc"]])
        at = (error.get("ctx") or {}).get("at")
        if isinstance(at, str):
            path = _join(path, at)
        rule = _describe(error, root)
        match = _INHERITED.match(path)
        if match is not None:
            index, key = int(match.group(1)), match.group(2)
            if index < len(inherited) and key in inherited[index]:
                rule += f" (the value comes from defaults.{key})"
        problems.append((path or None, rule))
    return problems


def syntax_problem(exc: tomllib.TOMLDecodeError) -> tuple[str | None, str]:
    text = str(exc)
    found = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", text)
    if found is not None:
        detail = found.group(1)
        where = f"line {found.group(2)}, column {found.group(3)}"
    elif text.endswith(" (at end of document)"):
        detail, where = text.removesuffix(" (at end of document)"), "end of file"
    else:
        detail, where = text, None
    detail = detail[:1].lower() + detail[1:]
    return where, f"TOML syntax error: {detail}"
