"""Secrets never shown: every settings view masks by the model's marking, checked field by field.

The walk visits every field of the whole settings model. A field whose name
looks secret must be marked (`SecretStr` or `Secret`); then a settings object
with a recognisable secret in every marked field, and credentials in every
URL, is masked, and not one of those secrets may appear in what is shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from gasbill.config import Settings, load_settings
from gasbill.secret import MASK, masked, secret_of
from tests.conftest import ROOT

LOOKS_SECRET = re.compile(r"key|secret|password|passwd|token|credential|url|dsn", re.IGNORECASE)
SENTINEL = "Sup3rS3cretValue"


def fields(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, FieldInfo]]:
    for name, field in model.model_fields.items():
        where = f"{path}{name}"
        yield where, field
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            yield from fields(kind, where + ".")


def holds_text(field: FieldInfo) -> bool:
    """Can the field hold a secret: text, or a mapping or sequence of text?"""
    kind = field.annotation
    if kind in (str, SecretStr):
        return True
    if get_origin(kind) in (dict, list, tuple):
        return any(arg in (str, SecretStr) for arg in get_args(kind)[-1:])
    return str in get_args(kind) or SecretStr in get_args(kind)


def test_every_field_that_looks_secret_is_marked():
    unmarked = [
        where
        for where, field in fields(Settings)
        if LOOKS_SECRET.search(where.rsplit(".", 1)[-1])
        and holds_text(field)
        and secret_of(field) is None
    ]
    assert unmarked == []


def value_for(field: FieldInfo) -> Any:
    marking = secret_of(field)
    assert marking is not None
    if marking.shown == "nothing":
        if get_origin(field.annotation) is dict:
            return {"1001": SENTINEL + "0001", "1002": SENTINEL + "0002"}
        return SENTINEL
    # a URL: credentials in the user part and the query; a webhook's in its path too
    path = f"/hooks/{SENTINEL}" if marking.shown == "host" else "/api/"
    return f"https://user:{SENTINEL}@example.com:8443{path}?token={SENTINEL}&a=1"


def with_secrets() -> tuple[Settings, int]:
    """Settings with a sentinel in every field marked secret; how many fields that is."""
    document: dict[str, Any] = {}
    count = 0
    for where, field in fields(Settings):
        if secret_of(field) is None:
            continue
        *sections, name = where.split(".")
        node = document
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value_for(field)
        if name == "base_url" and "query_poll" in sections:
            node["enabled"] = False
        count += 1
    if "notify" in document:
        document["notify"]["channel"] = "webhook"
    return Settings(**document), count


def test_no_secret_is_shown_by_the_settings_view():
    settings, count = with_secrets()
    assert count >= 8  # keys, passwords, signing and audit keys, data_api_key, URLs
    shown = masked(settings)
    text = json.dumps(shown, ensure_ascii=False)
    assert SENTINEL not in text
    assert shown["push"]["keys"] == {"1001": MASK, "1002": MASK}
    assert shown["app"]["secret_key"] == MASK
    assert shown["app"]["audit_key"] == MASK
    assert shown["platform"]["password"] == MASK
    assert shown["jobs"]["query_poll"]["data_api_key"] == MASK
    assert shown["notify"]["webhook_url"] == f"https://{MASK}@example.com:8443/{MASK}"
    # what is not secret is still there to read
    assert shown["staff"]["login_max_failures"] == settings.staff.login_max_failures
    assert shown["platform"]["company_no"] == "1001"


def test_a_database_url_keeps_all_but_its_password():
    settings = Settings(database={"url": f"postgresql://billing:{SENTINEL}@db:5432/gas?sslmode=x"})
    url = masked(settings)["database"]["url"]
    assert url == f"postgresql://billing:{MASK}@db:5432/gas?sslmode={MASK}"
    assert masked(Settings())["database"]["url"] == "sqlite:///var/gasbill.db"


def test_the_shipped_configuration_shows_none_of_its_secrets():
    settings = load_settings(ROOT / "config.toml")
    shown = json.dumps(masked(settings))
    assert settings.app.secret_key.get_secret_value() not in shown
    assert settings.app.audit_key.get_secret_value() not in shown
    for key in settings.push.keys.values():
        assert key not in shown
