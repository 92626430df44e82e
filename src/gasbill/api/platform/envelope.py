"""The platform's envelope: {"State", "Message", "Data"} (+ Totalcount/Startrow/Rowcount).

Written with exact decimals (never through float). Failures carry a clear
Message and an HTTP status that fits; the platform reads the envelope, not
the status.
"""

from __future__ import annotations

from typing import Any

from fastapi import Response

from gasbill.adapters.platform import jsontext

MEDIA_TYPE = "application/json; charset=utf-8"


class PlatformFailure(Exception):
    """Answer with a `failed` envelope and this status."""

    def __init__(self, status_code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.data = data


def envelope(data: Any, *, status_code: int = 200, message: str = "") -> Response:
    if isinstance(data, str) and not message and data.isalnum():
        # a push's answer, thousands a second: nothing in it needs escaping
        text = '{"Data":"' + data + '","State":"success","Message":""}'
    else:
        text = jsontext.dumps_exact({"Data": data, "State": "success", "Message": message})
    return Response(text, status_code=status_code, media_type=MEDIA_TYPE)


def list_envelope(rows: list[Any], *, total: int, start: int) -> Response:
    body = {
        "Data": rows,
        "Totalcount": total,
        "Startrow": start,
        "Rowcount": len(rows),
        "State": "success",
        "Message": "",
    }
    return Response(jsontext.dumps_exact(body), media_type=MEDIA_TYPE)


def failed(failure: PlatformFailure) -> Response:
    body = {"Data": failure.data, "State": "failed", "Message": failure.message}
    return Response(
        jsontext.dumps_exact(body), status_code=failure.status_code, media_type=MEDIA_TYPE
    )
