"""What a schemathesis case says about itself, for the runs over both APIs."""

from __future__ import annotations

import schemathesis


def headers_broken_on_purpose(case: schemathesis.Case) -> bool:
    """The case's headers are the negative part (a required header such as Authorization or
    the platform's key dropped or malformed): send them as generated, never add credentials,
    so the refusal the case expects is what it meets."""
    meta = case._meta
    components = meta.components if meta is not None else {}
    return any(
        getattr(where, "value", where) == "header" and info.mode.value == "negative"
        for where, info in components.items()
    )
