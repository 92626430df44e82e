"""/health and /metrics, for operators: no token, plain answers."""

from __future__ import annotations

import json
import re

import sqlalchemy as sa
from fastapi.testclient import TestClient

from gasbill.adapters.db.engine import make_engine
from gasbill.adapters.db.migrations import upgrade
from gasbill.api.app import create_app
from gasbill.cli.serve import build_runtime
from tests.e2e.staff_helpers import staff_settings

KEYS = {"company_no": "1001", "data_api_key": "496d1bac094f11e79d9c0a0027000010"}
READING = {
    "meter_comm_no": "12345678901234",
    "data_type": 1,
    "acquisition_time": "2020-01-01 00:00:00",
    "std_sum": 12.5,
}


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None."""
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{shown}}}" if shown else name
    for line in text.splitlines():
        if not line.startswith("#") and line.rsplit(" ", 1)[0] == wanted:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_health_is_ok_on_a_current_database(db_url):
    with TestClient(create_app(staff_settings(db_url))) as http:
        reply = http.get("/health")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert re.fullmatch(r"[0-9a-f]{12}", reply.json()["schema"])


def test_health_is_503_naming_the_problem_when_the_schema_is_behind(tmp_path):
    empty = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(staff_settings(f"sqlite:///{tmp_path / 'empty.db'}"), engine=empty)
    reply = TestClient(app).get("/health")  # no lifespan: it would refuse to start
    assert reply.status_code == 503
    assert reply.json()["status"] == "unavailable"
    assert "gasbill db upgrade" in reply.json()["schema"]
    empty.dispose()


def test_health_is_503_when_the_database_cannot_be_reached(tmp_path):
    gone = make_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir'}/x.db")
    gone.dispose()
    (tmp_path / "no").rename(tmp_path / "moved")  # the directory the file would be in is gone
    app = create_app(staff_settings(f"sqlite:///{tmp_path}/x.db"), engine=gone)
    reply = TestClient(app).get("/health")
    assert reply.status_code == 503
    assert reply.json()["database"].startswith("unreachable")


def test_metrics_count_pushes_and_what_waits_in_the_database(db_url):
    with TestClient(create_app(staff_settings(db_url))) as http:
        before = http.get("/metrics")
        assert before.status_code == 200
        assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert sample(before.text, "gasbill_inbox_pending") == 0
        pushed = http.post(
            "/api/Data/MeterData/Add",
            content=json.dumps(READING),
            headers={**KEYS, "content-type": "application/json"},
        )
        assert pushed.json()["State"] == "success"
        after = http.get("/metrics").text
    assert sample(after, "gasbill_push_readings_total") == 1
    assert sample(after, "gasbill_push_transactions_total") == 1
    assert sample(after, "gasbill_inbox_pending") == 1
    assert sample(after, "gasbill_commands_in_flight", status="queued") == 0
    assert sample(after, "gasbill_push_conflicts_unreviewed") == 0
    assert "# TYPE gasbill_push_readings_total counter" in after
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM billing_inbox")).scalar_one() == 1
    engine.dispose()


def test_metrics_of_a_process_that_runs_the_jobs_show_each_job(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    runtime = build_runtime(staff_settings(url))  # the scheduler built, not started
    try:
        text = TestClient(runtime.app).get("/metrics").text
    finally:
        runtime.close()
    assert sample(text, "gasbill_jobs_leader") == 0
    assert sample(text, "gasbill_job_runs_total", job="inbox") == 0
    assert sample(text, "gasbill_job_failures_total", job="decisions") == 0
