"""The vendor's envelope (§2–§4 samples): `{"Data", "State", "Message"}`, lists with counts.

`State` is `success` or `failed`; list replies add `Totalcount`, `Startrow`
and `Rowcount`, spelled as the samples spell them. A refusal is `Refused`:
its `Data` is what the document says a failure returns (0 for the
operations that return a ctrl_id, null for those that return an object),
with an HTTP status that fits (the document names none).
"""

from __future__ import annotations

from typing import Any

from iotsim.jsonwire import read_json, write_json


class Refused(Exception):
    """A request the platform refuses: a `failed` envelope with this status and Data."""

    def __init__(self, status: int, message: str, data: Any = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.data = data


def success(data: Any, message: str = "") -> str:
    return write_json({"Data": data, "State": "success", "Message": message})


def success_list(rows: list[Any], *, total: int, start: int, message: str = "") -> str:
    return write_json(
        {
            "Data": rows,
            "Totalcount": total,
            "Startrow": start,
            "Rowcount": len(rows),
            "State": "success",
            "Message": message,
        }
    )


def failure(refused: Refused) -> str:
    return write_json({"Data": refused.data, "State": "failed", "Message": refused.message})


def answer_of(text: str) -> tuple[bool, str, Any]:
    """(success, Message, Data) of an application's envelope; ValueError if it is none.

    The simulated platform reads its pushes' answers by the envelope alone.
    """
    body = read_json(text)
    if not isinstance(body, dict) or body.get("State") not in ("success", "failed"):
        raise ValueError("not the platform's envelope")
    message = body.get("Message")
    return body["State"] == "success", message if isinstance(message, str) else "", body.get("Data")
