"""GET /metrics over real HTTP: the exposition is valid (promtool) and each metric moves when
the thing it counts happens (read before and after the action)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import AgentCtx, Server, start_server, stop_server

Labels = dict[str, str]


def scrape(server: Server) -> str:
    resp = server.api().get("/metrics")
    assert resp.status == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return resp.text


def value(text: str, name: str, labels: Labels | None = None) -> float:
    """The sample ``name`` with exactly ``labels`` (0.0 when absent: not yet observed)."""
    wanted = labels or {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == wanted:
                return float(sample.value)
    return 0.0


def names(text: str) -> set[str]:
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_exposition_passes_promtool(server: Server, admin: AgentCtx) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        assert not os.environ.get("AGENTHUB_REQUIRE_PROMTOOL"), "promtool is required here"
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run installs it)")
    admin.api.get("/api/v1/rooms")  # at least one labelled sample of each HTTP/DB metric
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=scrape(server),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "" and result.stderr.strip() == "", result.stderr


def test_exposition_has_every_documented_metric(server: Server) -> None:
    text = scrape(server)
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["agenthub_agents_connected"] == "gauge"
    assert families["agenthub_rooms_active"] == "gauge"
    assert families["agenthub_messages"] == "counter"
    assert families["agenthub_websocket_latency_seconds"] == "histogram"
    assert families["agenthub_http_requests"] == "counter"
    assert families["agenthub_http_request_duration_seconds"] == "histogram"
    assert families["agenthub_db_query_duration_seconds"] == "histogram"
    assert families["agenthub_waiting_requests"] == "gauge"
    # process metrics (Linux /proc) and the Python platform
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= names(text)
    assert "python_info" in names(text)


def test_http_requests_are_counted_by_route_pattern_never_raw_path(
    server: Server, admin: AgentCtx, make_room: Callable[..., dict[str, object]]
) -> None:
    room = make_room(admin)
    labels = {"method": "GET", "route": "/api/v1/rooms/{id}", "status_code": "200"}
    before = scrape(server)
    for _ in range(3):
        assert admin.api.get(f"/api/v1/rooms/{room['id']}").status == 200
    missing = admin.api.get(f"/api/v1/rooms/{uuid.uuid4()}")
    assert missing.status == 404
    after = scrape(server)

    assert value(after, "agenthub_http_requests_total", labels) == (
        value(before, "agenthub_http_requests_total", labels) + 3
    )
    labels_404 = dict(labels, status_code="404")
    assert value(after, "agenthub_http_requests_total", labels_404) == (
        value(before, "agenthub_http_requests_total", labels_404) + 1
    )
    route = {"route": "/api/v1/rooms/{id}"}
    assert value(after, "agenthub_http_request_duration_seconds_count", route) == (
        value(before, "agenthub_http_request_duration_seconds_count", route) + 4
    )
    assert str(room["id"]) not in after  # the pattern, never the path


def test_unknown_routes_share_one_label(server: Server) -> None:
    labels = {"method": "GET", "route": "unmatched", "status_code": "404"}
    before = scrape(server)
    for i in range(2):
        assert server.api().get(f"/no/such/{uuid.uuid4()}/{i}").status == 404
    after = scrape(server)
    assert value(after, "agenthub_http_requests_total", labels) == (
        value(before, "agenthub_http_requests_total", labels) + 2
    )
    assert "/no/such" not in after


def test_messages_total_counts_stored_messages_per_room(
    server: Server, admin: AgentCtx, make_room: Callable[..., dict[str, object]]
) -> None:
    room = make_room(admin)
    other = make_room(admin)
    path = f"/api/v1/rooms/{room['id']}/messages"
    before = scrape(server)
    assert admin.api.post(path, {"body": "one"}).status == 201
    assert admin.api.post(path, {"body": "two", "clientMsgId": "m-2"}).status == 201
    # A retried send returns the stored message: not a new message, not counted.
    assert admin.api.post(path, {"body": "two", "clientMsgId": "m-2"}).status == 200
    # Refused sends store nothing and count nothing.
    assert admin.api.post(path, {"body": ""}).status == 400
    after = scrape(server)
    key = {"room_id": str(room["id"])}
    assert value(before, "agenthub_messages_total", key) == 0
    assert value(after, "agenthub_messages_total", key) == 2
    assert value(after, "agenthub_messages_total", {"room_id": str(other["id"])}) == 0


def test_db_query_duration_observed_per_sql_verb(
    server: Server, admin: AgentCtx, make_room: Callable[..., dict[str, object]]
) -> None:
    room = make_room(admin)
    before = scrape(server)
    assert admin.api.get(f"/api/v1/rooms/{room['id']}/messages").status == 200
    middle = scrape(server)
    assert admin.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "x"}).status == 201
    after = scrape(server)

    def count(text: str, op: str) -> float:
        return value(text, "agenthub_db_query_duration_seconds_count", {"operation": op})

    assert count(middle, "select") > count(before, "select")
    assert count(middle, "insert") == count(before, "insert")  # a read inserts nothing
    # A post is one statement: WITH bump (UPDATE rooms) … INSERT message … INSERT audit.
    assert count(after, "with") >= count(middle, "with") + 1
    # Multi-statement writes commit explicitly, and the COMMIT is timed too.
    make_room(admin)
    assert count(scrape(server), "commit") >= count(after, "commit") + 1
    operations = {
        s.labels["operation"]
        for f in text_string_to_metric_families(after)
        for s in f.samples
        if s.name == "agenthub_db_query_duration_seconds_count"
    }
    assert operations <= {
        "select",
        "insert",
        "update",
        "delete",
        "with",
        "begin",
        "commit",
        "rollback",
        "set",
        "other",
    }


def test_metrics_token_guards_the_endpoint_when_set(server: Server, tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    guarded = start_server(dict(server.env, METRICS_TOKEN=token), tmp_path / "metrics.log")
    try:
        anonymous = guarded.api().get("/metrics")
        assert anonymous.status == 401
        assert anonymous.error_code() == "unauthorized"
        assert guarded.api("wrong-token").get("/metrics").status == 401
        ok = guarded.api(token).get("/metrics")
        assert ok.status == 200
        assert "agenthub_http_requests_total" in ok.text
    finally:
        assert stop_server(guarded) == 0
    assert token not in guarded.log_text()


def test_dashboard_and_docs_name_only_real_metrics(server: Server) -> None:
    import json
    import re

    root = Path(__file__).resolve().parents[2]
    families = list(text_string_to_metric_families(scrape(server)))
    exposed = {s.name for f in families for s in f.samples} | {f.name for f in families}
    # A labelled histogram shows no series before its first observation.
    exposed |= {
        f"{f.name}{suffix}"
        for f in families
        if f.type == "histogram"
        for suffix in ("_bucket", "_count", "_sum")
    }
    dashboard = json.loads((root / "docs/grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {m for e in exprs for m in re.findall(r"\b(?:agenthub|process)_[a-z_]+", e)}
    used |= set(re.findall(r"\bagenthub_[a-z_]+", (root / "docs/METRICS.md").read_text()))
    assert used, "the dashboard has no queries"
    assert used <= exposed, used - exposed


def test_audit_events_total_counts_each_committed_write_by_type(
    server: Server,
    admin: AgentCtx,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    owner = make_agent()
    stranger = make_agent()
    room = make_room(owner)
    path = f"/api/v1/rooms/{room['id']}"

    def counts() -> dict[str, float]:
        text = scrape(server)
        types = (
            "room-updated",
            "room-archived",
            "room-unarchived",
            "dm-created",
            "message-sent",
            "message-redacted",
        )
        return {t: value(text, "agenthub_audit_events_total", {"type": t}) for t in types}

    before = counts()
    assert owner.api.patch(path, {"topic": "plans"}).status == 200
    # Refused writes store nothing and count nothing.
    assert stranger.api.patch(path, {"topic": "mine"}).status in (403, 404)
    sent = owner.api.post(f"{path}/messages", {"body": "hi", "clientMsgId": "audit-count-1"})
    assert sent.status == 201, sent.text
    # A retried send returns the stored message: no second audit row, no second count.
    again = owner.api.post(f"{path}/messages", {"body": "hi", "clientMsgId": "audit-count-1"})
    assert again.status == 200, again.text
    assert owner.api.delete(f"{path}/messages/{sent.body['seq']}").status == 204
    assert owner.api.post(f"{path}/archive").status == 200
    # Archiving an archived room changes nothing: no audit event, no count.
    assert owner.api.post(f"{path}/archive").status == 200
    assert owner.api.post(f"{path}/unarchive").status == 200
    assert owner.api.post("/api/v1/dms", {"agentId": stranger.id}).status == 201
    # Found again: no new room, nothing counted.
    assert stranger.api.post("/api/v1/dms", {"agentId": owner.id}).status == 200
    after = counts()
    assert {t: after[t] - before[t] for t in after} == {
        "room-updated": 1,
        "room-archived": 1,
        "room-unarchived": 1,
        "dm-created": 1,
        "message-sent": 1,
        "message-redacted": 1,
    }
