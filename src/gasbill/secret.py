"""Which settings are secret, and how every settings view masks them.

A setting is secret because its field says so, never because of its name:
either its type is `SecretStr`, or it is annotated with a `Secret` marker
saying what of the value may still be shown (nothing; a database URL without
its password; a URL without its credentials and query; only a URL's host).
`masked` walks any settings model by those markings, so a new secret field
is masked the moment it is marked, and `tests/unit/test_settings_secrets.py`
fails if a field that looks secret is left unmarked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

MASK = "********"

Shown = Literal["nothing", "dsn", "url", "host"]


@dataclass(frozen=True, slots=True)
class Secret:
    """Field metadata: this setting is secret; `shown` is what a view may still show.

    - "nothing": the value (each value, for a mapping) is replaced by the mask;
    - "dsn": a database URL, shown without its password;
    - "url": a URL, shown without user, password and query;
    - "host": a URL whose path may carry a token (webhooks): scheme and host only.
    """

    shown: Shown = "nothing"


def secret_of(field: FieldInfo) -> Secret | None:
    """The field's marking, or None when it is not secret."""
    if field.annotation is SecretStr or SecretStr in get_args(field.annotation):
        return Secret()
    for item in field.metadata:
        if isinstance(item, Secret):
            return item
    return None


def masked(model: BaseModel) -> dict[str, Any]:
    """The model as JSON, every field marked secret masked, recursively."""
    document: dict[str, Any] = model.model_dump(mode="json")
    _scrub(model, document)
    return document


def _scrub(model: BaseModel, document: dict[str, Any]) -> None:
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        marking = secret_of(field)
        if marking is not None:
            document[name] = _mask(value, marking.shown)
        elif isinstance(value, BaseModel):
            _scrub(value, document[name])


def _mask(value: Any, shown: Shown) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, dict):
        return {str(k): _mask(v, shown) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask(v, shown) for v in value]
    if value is None or value == "":
        return value  # "not set" is not a secret
    text = str(value)
    if shown == "nothing":
        return MASK
    return _masked_url(text, shown)


def _masked_url(text: str, shown: Shown) -> str:
    try:
        parts = urlsplit(text)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme:
        return MASK
    plain = parts.username is None and parts.password is None and not parts.query
    if plain and (shown != "host" or not parts.path.strip("/")):
        return text  # nothing in it to hide
    netloc = host if port is None else f"{host}:{port}"
    if shown == "dsn":
        if parts.username is not None:
            user = parts.username + (f":{MASK}" if parts.password is not None else "")
            netloc = f"{user}@{netloc}"
        query = _masked_query(parts)
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    if parts.username is not None or parts.password is not None:
        netloc = f"{MASK}@{netloc}"
    if shown == "host":
        rest = "/" + MASK if parts.path.strip("/") or parts.query else "/"
        return urlunsplit((parts.scheme, netloc, "", "", "")) + rest
    return urlunsplit((parts.scheme, netloc, parts.path, _masked_query(parts), ""))


def _masked_query(parts: SplitResult) -> str:
    """Query parameters keep their names; their values (a password=, a token=) are masked."""
    if not parts.query:
        return ""
    names = [item.split("=", 1)[0] for item in parts.query.split("&")]
    return "&".join(f"{name}={MASK}" for name in names)
