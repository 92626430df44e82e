"""A pushed body read from bytes: JSON with exact decimals, refused with a message when it is
not UTF-8, empty, malformed or nested too deep (checked before parsing); a validation
error described in a line."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from gasbill.adapters.platform.jsontext import loads_exact


class BadBody(ValueError):
    """A body that cannot be taken; the message names the field and the problem."""


def parse_json(body: bytes) -> Any:
    """JSON with exact decimals; NaN, Infinity and invalid UTF-8 refused."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not text.strip():
        raise BadBody("the body is empty; expected JSON")
    if nests_deeper_than(body, MAX_DEPTH):
        raise BadBody(f"the JSON nests deeper than {MAX_DEPTH} levels")
    try:
        return loads_exact(text)
    except json.JSONDecodeError as exc:
        raise BadBody(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise BadBody(str(exc)) from None
    except RecursionError:
        raise BadBody(f"the JSON nests deeper than {MAX_DEPTH} levels") from None


def describe(error: ValidationError) -> str:
    """The first problem, as `field: what is wrong`."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    message = str(first["msg"]).removeprefix("Value error, ")
    if first["type"] == "missing":
        message = "is required"
    elif first["type"] == "extra_forbidden":
        message = "is not a field of this message"
    return f"{where}: {message}"


MAX_DEPTH = 32  # the deepest platform body nests three levels


def nests_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests ([ and { outside strings) deeper than `limit`, unparsed.

    Checked before parsing, so a body 30,000 levels deep is refused with a
    message instead of exhausting the parser. Strings are cut out, all but
    the brackets dropped, and innermost pairs removed `limit` times, each a
    pass at C speed; a body with few brackets is not looked at. Unbalanced
    brackets count as too deep: such a body is malformed anyway.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        if not brackets:
            return False
        brackets = _INNERMOST.sub(b"", brackets)
    return bool(brackets)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
