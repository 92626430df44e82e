"""Requests that move money carry an `Idempotency-Key`: a repeat replays the first answer.

The first successful answer is stored with a hash of the request (its scope,
path and body). The same key with the same request gets that answer again,
status included; the same key with another request is a 409. The ledger
keeps its own guard underneath (one transfer per key), so two concurrent
first requests still make one transfer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from gasbill.adapters.db.repositories.idempotency import IdempotencyStore
from gasbill.adapters.db.uow import UnitOfWork
from gasbill.api.errors import ApiError
from gasbill.domain.audit import canonical_json
from gasbill.domain.errors import IdempotencyConflict

KEY = re.compile(r"[\x21-\x7e]{1,100}")  # printable ASCII, no spaces
REPLAYED = "Idempotent-Replayed"

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Required. A unique key per operation (e.g. a UUID); "
        "repeating a request with the same key replays the first answer.",
    ),
]


def check_key(key: str | None) -> str:
    if not key:
        raise ApiError(
            400,
            "idempotency_key_required",
            "this request moves money: send an Idempotency-Key header (e.g. a UUID)",
        )
    if not KEY.fullmatch(key):
        raise ApiError(
            400,
            "invalid_idempotency_key",
            "an Idempotency-Key has 1 to 100 printable ASCII characters, no spaces",
        )
    return key


def request_hash(scope: str, request: object) -> str:
    return hashlib.sha256(canonical_json([scope, request]).encode("utf-8")).hexdigest()


def idempotent(
    uow: UnitOfWork,
    *,
    key: str | None,
    scope: str,
    request: object,
    run: Callable[[str], Any],
    status: int = 201,
) -> JSONResponse:
    """Answer with the stored answer for `key`, or `run(key)`'s, stored for next time."""
    key = check_key(key)
    digest = request_hash(scope, request)
    replay = _replay(uow, key, scope, digest)
    if replay is not None:
        return replay
    try:
        body = jsonable_encoder(run(key))
    except IdempotencyConflict:
        # A concurrent first request with this key may have won: answer as it did.
        replay = _replay(uow, key, scope, digest)
        if replay is not None:
            return replay
        raise
    with uow:
        try:
            IdempotencyStore(uow.session).save(key, scope, digest, status, json.dumps(body))
            uow.commit()
            return JSONResponse(body, status)
        except IntegrityError:
            pass  # a concurrent first request stored its answer first: give that one
    return _replay(uow, key, scope, digest) or JSONResponse(body, status)


def _replay(uow: UnitOfWork, key: str, scope: str, digest: str) -> JSONResponse | None:
    with uow:
        found = IdempotencyStore(uow.session).get(key)
    if found is None:
        return None
    if found.scope != scope or found.request_hash != digest:
        raise ApiError(
            409,
            "idempotency_conflict",
            "this Idempotency-Key was already used for a different request",
        )
    return JSONResponse(json.loads(found.response), found.status_code, headers={REPLAYED: "true"})
