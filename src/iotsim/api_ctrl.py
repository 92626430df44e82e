"""`api/Conf/CtrlData/*` (§4.2): single and batch, as the vendor's samples show them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response

from iotsim.envelope import success, success_list
from iotsim.gate import Gate
from iotsim.queries import page_of
from iotsim.records import NOT_FOUND, CtrlRecord, CtrlRefused, batch_item, ids_of

CTRL = "/api/Conf/CtrlData/"


def _ctrl_id(text: str) -> int:
    if not text.isdigit() or len(text) > 9:
        raise CtrlRefused(404, f"{NOT_FOUND}: ctrl_id {text[:20]!r}")
    return int(text)


def _batch(items: list[dict[str, Any]]) -> str:
    return success_list(items, total=len(items), start=0)


def install_ctrl_routes(app: FastAPI, gate: Gate) -> None:
    """The remote-control endpoints (§4.2), in the order they are matched."""
    store = gate.sim.platform
    _write_routes(app, gate)
    _read_routes(app, gate)
    _multi_routes(app, gate)
    _single(app, gate, "Delete", store.delete, "Delete a command (§4.2.3)")
    _single(app, gate, "Cancel", store.cancel, "Cancel a waiting command (§4.2.6)")
    _single(app, gate, "Retry", store.retry, "Send a finished command again (§4.2.7)")
    _id_batch(app, gate, "Delete", store.delete, "Delete commands (§4.2.10)")
    _id_batch(app, gate, "Cancel", store.cancel, "Cancel waiting commands (§4.2.10)")
    _id_batch(app, gate, "Retry", store.retry, "Retry finished commands (§4.2.10)")


def _write_routes(app: FastAPI, gate: Gate) -> None:
    """Add and Update: one command."""
    store = gate.sim.platform

    @app.post(CTRL + "Add", summary="Add a command (§4.2.1)")
    async def add(request: Request) -> Response:
        return await gate.call(
            request, lambda body: success(store.add(body).ctrl_id), needs_body=True
        )

    @app.post(CTRL + "Update", summary="Update a waiting command (§4.2.2)")
    async def update(request: Request) -> Response:
        return await gate.call(
            request, lambda body: success(store.update(body).ctrl_id), needs_body=True
        )


def _read_routes(app: FastAPI, gate: Gate) -> None:
    """GetModel, GetList and GetDetial: the command records."""
    store = gate.sim.platform
    zone = gate.sim.zone

    @app.post(CTRL + "GetModel/{ctrl_id}", summary="One command record (§4.2.4)")
    async def get_model(request: Request, ctrl_id: str) -> Response:
        def work(_: Any) -> str:
            try:
                record = store.get(_ctrl_id(ctrl_id))
            except CtrlRefused as refused:
                raise CtrlRefused(404, refused.message, data=None) from None  # §4.2.4: null
            return success(record.wire(zone))

        return await gate.call(request, work)

    @app.post(CTRL + "GetList", summary="Command records by filter, paged (§4.2.5)")
    async def get_list(request: Request) -> Response:
        def work(body: Any) -> str:
            page = page_of(request.query_params)
            found = store.find(body)
            rows = [r.wire(zone) for r in found[page.start : page.start + page.count]]
            return success_list(rows, total=len(found), start=page.start)

        return await gate.call(request, work)

    @app.post(CTRL + "GetDetial/{ctrl_id}", summary="A command as text (§4.2.11, sic)")
    async def get_detail(request: Request, ctrl_id: str) -> Response:
        return await gate.call(
            request, lambda _: success(store.detail(store.get(_ctrl_id(ctrl_id))))
        )


def _multi_routes(app: FastAPI, gate: Gate) -> None:
    """AddMulti and UpdateMulti: many commands, each answered on its own."""
    store = gate.sim.platform

    @app.post(CTRL + "AddMulti", summary="Add commands (§4.2.8)")
    async def add_multi(request: Request) -> Response:
        def work(body: Any) -> str:
            if not isinstance(body, list):
                raise CtrlRefused(400, "the body must be a JSON array of commands")
            items = []
            for item in body:
                target = item.get("target_comm_no") if isinstance(item, dict) else None
                target = target if isinstance(target, str) else ""
                try:
                    record = store.add(item)
                    answered = batch_item(record, record.ctrl_id, "")
                    if gate.sim.faults.happens("batch_result_false"):
                        answered["result"] = False  # as the §4.2.8 sample: created, yet false
                    items.append(answered)
                except CtrlRefused as refused:
                    items.append(
                        {
                            "ctrl_id": 0,
                            "target_comm_no": target,
                            "result": False,
                            "message": refused.message,
                        }
                    )
            return _batch(items)

        return await gate.call(request, work, needs_body=True)

    @app.post(CTRL + "UpdateMulti", summary="Update waiting commands (§4.2.9)")
    async def update_multi(request: Request) -> Response:
        def work(body: Any) -> str:
            if not isinstance(body, list):
                raise CtrlRefused(400, "the body must be a JSON array of command records")
            items = []
            for item in body:
                ctrl_id = item.get("ctrl_id") if isinstance(item, dict) else None
                record = store.records.get(ctrl_id) if isinstance(ctrl_id, int) else None
                try:
                    store.update(item)
                    items.append(batch_item(record, record.ctrl_id if record else 0, ""))
                except CtrlRefused as refused:
                    items.append(
                        batch_item(record, record.ctrl_id if record else 0, refused.message)
                    )
            return _batch(items)

        return await gate.call(request, work, needs_body=True)


def _single(
    app: FastAPI, gate: Gate, name: str, operation: Callable[[Any], CtrlRecord], summary: str
) -> None:
    """`<name>/{ctrl_id}`: one command by its id."""

    @app.post(f"{CTRL}{name}/{{ctrl_id}}", summary=summary, name=f"ctrl_{name.lower()}")
    async def endpoint(request: Request, ctrl_id: str) -> Response:
        return await gate.call(request, lambda _: success(operation(_ctrl_id(ctrl_id)).ctrl_id))


def _id_batch(
    app: FastAPI, gate: Gate, name: str, operation: Callable[[Any], CtrlRecord], summary: str
) -> None:
    """`<name>Multi`: many commands by their ids, each answered on its own."""
    store = gate.sim.platform

    @app.post(f"{CTRL}{name}Multi", summary=summary, name=f"ctrl_{name.lower()}_multi")
    async def endpoint(request: Request) -> Response:
        def work(body: Any) -> str:
            items = []
            for ctrl_id in ids_of(body):
                record = store.records.get(ctrl_id) if isinstance(ctrl_id, int) else None
                try:
                    operation(ctrl_id)
                    items.append(batch_item(record, ctrl_id, ""))
                except CtrlRefused as refused:
                    items.append(batch_item(record, ctrl_id if record else 0, refused.message))
            return _batch(items)

        return await gate.call(request, work, needs_body=True)
