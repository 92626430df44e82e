"""A fixed corpus of hostile bodies against every write of both APIs (issue 16).

Every operation in the OpenAPI that takes a body (staff and platform) is sent each
entry of the corpus: NUL bytes, 2^63, NaN and infinities, a 1 MB body, JSON nested
30,000 deep, bad UTF-8, an empty body, a form instead of JSON. Each answer is a 4xx
with a message (the staff API's error shape, the platform's failed envelope), never
a 5xx, and no table gains, loses or changes a row. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import MetaData, select
from sqlalchemy.engine import Engine

from gasbill.adapters.platform.push_settings import PushSettings
from gasbill.api.app import create_app
from gasbill.api.policy import access_for
from tests.e2e.staff_helpers import API, auth, open_account, staff_settings

pytestmark = pytest.mark.db
KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
JSON = {"content-type": "application/json"}

# name -> raw body; each is refused by every write, whatever its schema
CORPUS: dict[str, bytes] = {
    "nul in every string": json.dumps({"x": "a\x00b", "name": "\x00", "reason": "\x00"}).encode(),
    "2^63 everywhere": b'{"amount": 9223372036854775808, "amount_fen": 9223372036854775808,'
    b' "ctrl_id": 9223372036854775808, "meter_comm_no": 9223372036854775808}',
    "NaN": b'{"amount": NaN, "std_sum": NaN, "data_type": NaN}',
    "infinity": b'{"amount": Infinity, "std_sum": -Infinity}',
    "1 MB": json.dumps({"note": "x" * 1_048_576}).encode(),
    "30,000 deep": b"[" * 30_000 + b"]" * 30_000,
    "bad utf-8": b'{"name": "\xff\xfe\xc3\x28", "meter_comm_no": "\xed\xa0\x80"}',
    "empty": b"",
    "truncated": b'{"amount": "1',
    "a bare number": b"12345678901234567890",
    "a form": b"amount=1&customer_id=1",
}
# the one refusal that writes: a failed login is counted, by design
COUNTED = {"login_attempt"}


def fingerprint(engine: Engine) -> dict[str, str]:
    """Each table's rows, hashed: any insert, delete or update changes it."""
    tables = MetaData()
    tables.reflect(engine)
    prints = {}
    with engine.connect() as connection:
        for name, table in sorted(tables.tables.items()):
            if name in COUNTED or name == "alembic_version":
                continue
            rows = connection.execute(select(table)).all()
            digest = hashlib.sha256(repr(sorted(map(repr, rows))).encode()).hexdigest()
            prints[name] = f"{len(rows)}:{digest[:16]}"
    return prints


def writes(app: Any) -> Iterator[tuple[str, str, str, bool]]:
    """(method, template, path, body required) of every operation that takes a body, its
    path's ids filled with 1."""
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if method in ("post", "put", "patch") and "requestBody" in operation:
                filled = path
                for part in operation.get("parameters", []):
                    if part["in"] == "path":
                        filled = filled.replace("{" + part["name"] + "}", "1")
                required = operation["requestBody"].get("required", False)
                yield method.upper(), path, filled, required


def caller(method: str, template: str, tokens: dict[str, dict[str, str]]) -> dict[str, str]:
    """A role the policy table lets through, so the body is what gets judged."""
    if not template.startswith(API):
        return KEYS
    access = access_for(method, template)
    assert access is not None, (method, template)
    return next((t for role, t in tokens.items() if access.allows(role)), {})


@pytest.fixture
def both(db_url, engine, catalog, clock, passwords, user_ids):
    settings = staff_settings(db_url).model_copy(
        update={"push": PushSettings(keys={KEYS["company_no"]: KEYS["data_api_key"]})}
    )
    app = create_app(settings, engine=engine, catalog=catalog, clock=clock, passwords=passwords)
    with TestClient(app) as client:
        yield client


def message_of(response: Any, path: str) -> str:
    body = response.json()
    if path.startswith(API):
        return str(body["error"]["message"])
    assert body["State"] == "failed" and body["Data"] is None, body
    return str(body["Message"])


def test_every_write_refuses_the_corpus_with_a_message_and_changes_no_row(both, engine):
    clerk = auth(both, "clerk")
    open_account(both, clerk)  # something to change, were a refusal to write
    tokens = {role: auth(both, role) for role in ("clerk", "auditor", "admin")}
    before = fingerprint(engine)
    operations = sorted(set(writes(both.app)))
    assert len(operations) >= 25, operations  # both APIs' writes are all here
    seen: dict[int, int] = {}
    for method, template, path, required in operations:
        headers = caller(method, template, tokens)
        for name, body in CORPUS.items():
            if name == "empty" and not required:
                continue  # a list query's conditions are all optional: no body asks for all
            kind = (
                {"content-type": "application/x-www-form-urlencoded"} if name == "a form" else JSON
            )
            response = both.request(method, path, content=body, headers={**headers, **kind})
            where = f"{method} {path} with {name}: {response.status_code} {response.text[:200]}"
            assert 400 <= response.status_code < 500, where
            assert message_of(response, path), where
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
    after = fingerprint(engine)
    assert after == before, {
        t: (before.get(t), after.get(t)) for t in after if after[t] != before.get(t)
    }
    print(f"\ncorpus: {len(operations)} writes, answers by status {dict(sorted(seen.items()))}")
    assert set(seen) <= {400, 404, 409, 413, 415, 422}, seen  # judged, never turned away
