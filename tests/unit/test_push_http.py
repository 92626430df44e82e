"""The simulator's kept-alive push client (iotsim.push_http) against a real socket."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from iotsim.faults import Faults, FaultSettings
from iotsim.push_http import KeepAliveClient, PushResponse
from iotsim.pusher import Pusher, PushTarget


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: ClassVar[list[tuple[str, bytes, str]]] = []
    close_after = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, body, self.headers["company_no"]))
        answer = b'{"result": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
        if type(self).close_after:
            self.close_connection = True  # as a server closing an idle keep-alive would

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Handler.seen = []
    _Handler.close_after = False
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_pushes_go_on_one_connection_and_a_closed_one_is_replaced(server):
    client = KeepAliveClient(f"http://127.0.0.1:{server.server_port}/")
    headers = {"content-type": "application/json", "company_no": "1001"}
    first = client.post("api/Data/MeterData/Add", content=b'{"a":1}', headers=headers)
    _Handler.close_after = True
    second = client.post("api/Conf/CtrlData/Report", content=b"[]", headers=headers)
    third = client.post("api/Data/MeterData/Add", content=b'{"a":3}', headers=headers)
    client.close()
    assert [a.status_code for a in (first, second, third)] == [200, 200, 200]
    assert first.text == '{"result": true}'
    assert _Handler.seen == [
        ("/api/Data/MeterData/Add", b'{"a":1}', "1001"),
        ("/api/Conf/CtrlData/Report", b"[]", "1001"),
        ("/api/Data/MeterData/Add", b'{"a":3}', "1001"),
    ]


def test_an_application_that_is_down_is_a_transport_error(server):
    port = server.server_port
    server.shutdown()
    server.server_close()
    client = KeepAliveClient(f"http://127.0.0.1:{port}/")
    with pytest.raises(httpx.TransportError):
        client.post("api/Data/MeterData/Add", content=b"{}", headers={})


def test_pushes_sent_at_once_each_go_on_their_thread_s_connection(server):
    client = KeepAliveClient(f"http://127.0.0.1:{server.server_port}/")
    headers = {"content-type": "application/json", "company_no": "1001"}
    bodies = [f'{{"n":{n}}}'.encode() for n in range(12)]
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda b: client.post("api/Data/MeterData/Add", content=b, headers=headers), bodies
            )
        )
    client.close()
    assert [a.status_code for a in answers] == [200] * 12
    assert sorted(body for _, body, _ in _Handler.seen) == sorted(bodies)


def test_a_report_is_pushed_alone_between_the_readings_sent_at_once():
    sent: list[tuple[int, str]] = []
    waves = 0
    lock = threading.Lock()

    class Recorder:
        def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> PushResponse:
            with lock:
                sent.append((waves, url))
            kind = "report" if "Report" in url else "reading"
            items = '[{"ctrl_id": 7, "result": true}]' if kind == "report" else '""'
            return PushResponse(200, f'{{"State": "success", "Message": "", "Data": {items}}}')

    pusher = Pusher(PushTarget(url="http://app/", concurrency=3), Faults(FaultSettings(), 1), None)
    pusher.client = Recorder()
    at = datetime(2025, 6, 1, tzinfo=UTC)
    kinds = ["reading"] * 4 + ["report"] + ["reading"] * 2 + ["alarm"]
    for kind in kinds:
        pusher.enqueue(kind, {"ctrl_id": 7} if kind == "report" else {}, at)  # type: ignore[arg-type]
    units = pusher._units(pusher._take_due(at))
    assert [[u[0].kind for u in wave] for wave in pusher._waves(units)] == [
        ["reading"] * 3,
        ["reading"],
        ["report"],
        ["reading", "reading", "alarm"],
    ]
    for kind in kinds:
        pusher.enqueue(kind, {"ctrl_id": 7} if kind == "report" else {}, at)  # type: ignore[arg-type]
    pusher.flush(at)
    assert pusher.stats.delivered == len(kinds) and pusher.pending == 0
