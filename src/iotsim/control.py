"""The simulator's own control API, under `/_sim/`: no part of the vendor's platform.

For whoever drives the simulated world over HTTP (a demo or a test beside a
running product): read and move the clock, set the faults, install meters,
read a meter's state, a command's fate on the meter, the fleet's summary,
and push what is due. Plain JSON, decimals as exact numbers; a refusal is
`{"error": {"code", "message"}}` with a 4xx. When the settings name a
`control_key`, every call must carry it in the `X-Sim-Key` header.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iotsim.faults import FaultSettings
from iotsim.fleet import Simulator
from iotsim.jsonwire import NotJson, read_json, write_json
from iotsim.meter import MeterStatus
from iotsim.vendor import SET_PRICE, BadParam, LadderPrice, read_ctrl_data

# a route's registration: (method, path, summary, status) -> a decorator of its work
_Route = Callable[..., Callable[[Callable[..., Any]], None]]

PREFIX = "/_sim"
MAX_ADVANCE = timedelta(days=400)


M = TypeVar("M", bound=BaseModel)


class ControlRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Advance(BaseModel):
    """Move the clock to `until` (aware ISO 8601), or forward by minutes/hours/days."""

    model_config = ConfigDict(extra="forbid")

    until: datetime | None = None
    minutes: int = Field(default=0, ge=0)
    hours: int = Field(default=0, ge=0)
    days: int = Field(default=0, ge=0)


class NewMeter(BaseModel):
    """Install a meter; `opened` with `balance` (yuan) and `ladder` (a ladder_price object)."""

    model_config = ConfigDict(extra="forbid")

    comm_no: str | None = None
    opened: bool = False
    balance: Decimal | None = Field(default=None, ge=0)
    ladder: dict[str, Any] | None = None
    scale_percent: int | None = Field(default=None, ge=0, le=1000)
    wake: time | None = None


class CardTopUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Decimal = Field(gt=0, le=Decimal(100_000), decimal_places=3)


def _json(data: Any, status: int = 200) -> Response:
    return Response(write_json(data), status_code=status, media_type="application/json")


def _error(exc: ControlRefused) -> Response:
    return _json({"error": {"code": exc.code, "message": exc.message}}, exc.status)


def meter_json(status: MeterStatus) -> dict[str, Any]:
    """A meter's state as plain JSON: yuan, m³, the ladder as its ladder_price object."""
    data = asdict(status)
    data["ladder"] = None if status.ladder is None else status.ladder.wire()
    data["wake_time"] = status.wake_time.isoformat()
    return data


def _body(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate(read_json(raw) if raw.strip() else {})
    except NotJson as exc:
        raise ControlRefused(400, "bad_body", f"the body: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ControlRefused(422, "invalid", f"{where}: {first['msg']}") from None


def _ladder(given: dict[str, Any] | None, sim: Simulator) -> LadderPrice | None:
    if given is None:
        return None
    try:
        ladder = read_ctrl_data(SET_PRICE, given, sim.zone)
    except BadParam as exc:
        raise ControlRefused(422, "invalid", f"ladder: {exc}") from None
    assert isinstance(ladder, LadderPrice)
    return ladder


def _advance(sim: Simulator, given: Advance) -> dict[str, Any]:
    now = sim.now
    step = timedelta(days=given.days, hours=given.hours, minutes=given.minutes)
    if given.until is not None and step:
        raise ControlRefused(422, "invalid", "until: give either until or minutes/hours/days")
    target = now + step
    if given.until is not None:
        if given.until.tzinfo is None:
            raise ControlRefused(422, "invalid", "until: needs an offset, e.g. +08:00")
        target = given.until
    if target < now:
        raise ControlRefused(409, "clock_behind", f"the clock is at {now.isoformat()} already")
    if target - now > MAX_ADVANCE:
        raise ControlRefused(422, "invalid", "at most 400 days at a time")
    sim.advance(target)
    return _clock(sim)


def _clock(sim: Simulator) -> dict[str, Any]:
    return {"now": sim.now.astimezone(sim.zone).isoformat()}


def _faults(sim: Simulator, given: FaultSettings) -> dict[str, Any]:
    try:
        sim.set_faults(given)
    except ValueError as exc:
        raise ControlRefused(422, "invalid", str(exc)) from None
    return given.model_dump(mode="json")


def _status(sim: Simulator, comm_no: str) -> MeterStatus:
    try:
        return sim.meter(comm_no)
    except KeyError:
        raise ControlRefused(404, "not_found", f"no simulated meter {comm_no[:50]}") from None


def _add_meter(sim: Simulator, given: NewMeter) -> dict[str, Any]:
    try:
        status = sim.add_meter(
            given.comm_no,
            opened=given.opened,
            balance=given.balance,
            ladder=_ladder(given.ladder, sim),
            scale_percent=given.scale_percent,
            wake=given.wake,
        )
    except ValueError as exc:
        raise ControlRefused(409 if "already" in str(exc) else 422, "refused", str(exc)) from None
    return meter_json(status)


def _commands(sim: Simulator) -> list[dict[str, Any]]:
    """Each command's state on the platform and how often its meter carried it out."""
    with sim.lock:
        records = list(sim.platform.records.values())
    return [
        {
            "ctrl_id": r.ctrl_id,
            "ctrl_define_no": r.ctrl_define_no,
            "target_comm_no": r.target_comm_no,
            "ctrl_type": r.ctrl_type,
            "ctrl_state": int(r.ctrl_state),
            "applied": r.applied,
        }
        for r in records
    ]


def _checked(sim: Simulator, request: Request) -> None:
    key = sim.settings.control_key
    if key is None:
        return
    given = request.headers.get("x-sim-key", "").encode()
    if not hmac.compare_digest(given, key.get_secret_value().encode()):
        raise ControlRefused(401, "unauthorized", "the X-Sim-Key header is missing or wrong")


def install_control_routes(app: FastAPI, sim: Simulator) -> None:
    """The `/_sim/` endpoints (in the app's OpenAPI under the tag `simulator control`)."""

    route = partial(_route, app, sim)
    _world_routes(route, sim)
    _meter_routes(route, sim)


def _route(
    app: FastAPI, sim: Simulator, method: str, path: str, summary: str, status: int = 200
) -> Callable[[Callable[..., Any]], None]:
    """Register `work(raw body, **path params)` at `PREFIX + path`: the control key checked,
    run off the event loop, its result as JSON."""

    def register(work: Callable[..., Any]) -> None:
        async def endpoint(request: Request) -> Response:
            try:
                _checked(sim, request)
                raw = await request.body()
                params = dict(request.path_params)
                result = await anyio.to_thread.run_sync(lambda: work(raw, **params))
            except ControlRefused as exc:
                return _error(exc)
            return _json(result, status)

        app.add_api_route(
            PREFIX + path, endpoint, methods=[method], summary=summary,
            tags=["simulator control"], name=f"sim_{work.__name__}",
        )  # fmt: skip

    return register


def _world_routes(route: _Route, sim: Simulator) -> None:
    """The clock and the faults."""

    @route("GET", "/clock", "The simulated clock")
    def clock(raw: bytes) -> Any:
        return _clock(sim)

    @route("POST", "/clock/advance", "Run the world to `until`, or forward by a span")
    def advance(raw: bytes) -> Any:
        return _advance(sim, _body(Advance, raw))

    @route("GET", "/faults", "The faults injected now")
    def faults(raw: bytes) -> Any:
        return sim.faults.settings.model_dump(mode="json")

    @route("PUT", "/faults", "Inject these faults from now on (omitted: none)")
    def set_faults(raw: bytes) -> Any:
        return _faults(sim, _body(FaultSettings, raw))


def _meter_routes(route: _Route, sim: Simulator) -> None:
    """The meters, their commands, the summary and the pushes."""

    @route("GET", "/meters", "The fleet's comm_nos")
    def meters(raw: bytes) -> Any:
        return {"comm_nos": sim.comm_nos()}

    @route("GET", "/fleet", "Every meter's state, in one call")
    def fleet(raw: bytes) -> Any:
        with sim.lock:
            return {"meters": [meter_json(sim.meter(c)) for c in sim.comm_nos()]}

    @route("POST", "/meters", "Install a meter", status=201)
    def add_meter(raw: bytes) -> Any:
        return _add_meter(sim, _body(NewMeter, raw))

    @route("GET", "/meters/{comm_no}", "One meter's state")
    def meter(raw: bytes, comm_no: str) -> Any:
        return meter_json(_status(sim, comm_no))

    @route("POST", "/meters/{comm_no}/card-top-up", "An IC-card top-up at the meter")
    def card_top_up(raw: bytes, comm_no: str) -> Any:
        _status(sim, comm_no)
        return meter_json(sim.card_top_up(comm_no, _body(CardTopUp, raw).value))

    @route("GET", "/commands", "Every command: its state and how often its meter applied it")
    def commands(raw: bytes) -> Any:
        return _commands(sim)

    @route("GET", "/summary", "The fleet's summary")
    def summary(raw: bytes) -> Any:
        data = asdict(sim.summary())
        data["now"] = sim.now.astimezone(sim.zone).isoformat()
        data["commands"] = {str(k): v for k, v in data["commands"].items()}
        return data

    @route("POST", "/push/flush", "Push what is due now (after the application came back)")
    def flush(raw: bytes) -> Any:
        sim.flush()
        return {"pending": sim.pusher.pending}
