"""SQL metacharacters and 1 MB strings in every request field, path segment and query
parameter. A value a field's rules refuse is a clear 4xx and nothing stored changes; a value
that is valid free text is stored verbatim (parameters, never string-built SQL) and reads
back identical."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from tests.servers import AgentCtx, Server

SQL = [
    "' OR '1'='1",
    "'; DROP TABLE agents; --",
    'x"); DELETE FROM messages; --',
    "1; SELECT pg_sleep(10)--",
    "%' OR 1=1 --",
    "$$ LANGUAGE sql $$",
    "\\'; TRUNCATE audit_events CASCADE; --",
    "admin'/*",
]
MEGA = "A" * 1_000_000  # 1 MB of text: with JSON framing, still under the 1 MiB body limit

Target = Callable[[AgentCtx], tuple[str, str, dict[str, Any]]]


def _targets(
    admin: AgentCtx, room: dict[str, object]
) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """field -> (method, path, a valid body in which that field is replaced)."""
    rid = room["id"]
    return {
        "agents.name": ("POST", "/api/v1/agents", {"name": "x"}),
        "agents.role": ("POST", "/api/v1/agents", {"name": "ok-name", "role": "x"}),
        "agents.displayName": ("POST", "/api/v1/agents", {"name": "ok-name", "displayName": "x"}),
        "agent.disabled": ("PATCH", f"/api/v1/agents/{admin.id}", {"disabled": "x"}),
        "tokens.expiresAt": ("POST", f"/api/v1/agents/{admin.id}/tokens", {"expiresAt": "x"}),
        "rooms.slug": ("POST", "/api/v1/rooms", {"slug": "x"}),
        "rooms.name": ("POST", "/api/v1/rooms", {"slug": "ok-slug", "name": "x"}),
        "rooms.visibility": ("POST", "/api/v1/rooms", {"slug": "ok-slug", "visibility": "x"}),
        "members.agentId": ("POST", f"/api/v1/rooms/{rid}/members", {"agentId": "x"}),
        "messages.body": ("POST", f"/api/v1/rooms/{rid}/messages", {"body": "x"}),
        "messages.clientMsgId": (
            "POST",
            f"/api/v1/rooms/{rid}/messages",
            {"body": "ok", "clientMsgId": "x"},
        ),
    }


# Fields whose rules make any SQL-looking value invalid (patterns, enums, types).
CONSTRAINED = [
    "agents.name",
    "agents.role",
    "agent.disabled",
    "tokens.expiresAt",
    "rooms.slug",
    "rooms.visibility",
    "members.agentId",
]
# Free text: SQL-looking text is valid data and must round-trip unchanged.
FREE_TEXT = ["agents.displayName", "rooms.name", "messages.body", "messages.clientMsgId"]


def _with(body: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    key = field.split(".", 1)[1]
    out = dict(body)
    out[key] = value
    if "name" in out and key != "name" and out["name"] == "ok-name":
        out["name"] = f"ok-{uuid.uuid4().hex[:10]}"
    if "slug" in out and key != "slug" and out["slug"] == "ok-slug":
        out["slug"] = f"ok-{uuid.uuid4().hex[:10]}"
    return out


@pytest.mark.parametrize("payload", SQL)
@pytest.mark.parametrize("field", CONSTRAINED)
def test_sql_in_constrained_fields_is_400_and_stores_nothing(
    admin: AgentCtx,
    make_room: Callable[..., dict[str, object]],
    table_counts: Callable[[], dict[str, int]],
    field: str,
    payload: str,
) -> None:
    room = make_room(admin)
    method, path, body = _targets(admin, room)[field]
    before = table_counts()
    resp = admin.api.request(method, path, _with(body, field, payload))
    assert resp.status == 400, (field, payload, resp.text)
    assert resp.error_code() == "validation_failed"
    assert field.split(".", 1)[1] in resp.body["error"].get("details", {}), resp.text
    assert table_counts() == before


@pytest.mark.parametrize("payload", SQL)
@pytest.mark.parametrize("field", FREE_TEXT)
def test_sql_in_free_text_is_stored_verbatim(
    admin: AgentCtx,
    make_room: Callable[..., dict[str, object]],
    table_counts: Callable[[], dict[str, int]],
    field: str,
    payload: str,
) -> None:
    room = make_room(admin)
    method, path, body = _targets(admin, room)[field]
    before = table_counts()
    resp = admin.api.request(method, path, _with(body, field, payload))
    assert resp.status == 201, (field, payload, resp.text)
    key = field.split(".", 1)[1]
    expected = payload.strip() if key == "displayName" else payload
    assert resp.body[key] == expected
    # Read back from the server, not from the write's echo.
    if field.startswith("agents."):
        stored = admin.api.get(f"/api/v1/agents/{resp.body['id']}").body
    elif field.startswith("rooms."):
        stored = admin.api.get(f"/api/v1/rooms/{resp.body['id']}").body
    else:
        page = admin.api.get(f"/api/v1/rooms/{room['id']}/messages").body
        stored = next(m for m in page["messages"] if m["id"] == resp.body["id"])
    assert stored[key] == resp.body[key]
    after = table_counts()
    # Every table still there; only the rows this write adds were added.
    assert set(after) == set(before)
    assert after["agents"] >= before["agents"] and after["messages"] >= before["messages"]


@pytest.mark.parametrize("field", CONSTRAINED + FREE_TEXT)
def test_one_megabyte_string_in_every_field_is_4xx_and_stores_nothing(
    admin: AgentCtx,
    make_room: Callable[..., dict[str, object]],
    table_counts: Callable[[], dict[str, int]],
    field: str,
) -> None:
    room = make_room(admin)
    method, path, body = _targets(admin, room)[field]
    before = table_counts()
    resp = admin.api.request(method, path, _with(body, field, MEGA))
    assert resp.status in (400, 413), (field, resp.status, resp.text[:300])
    assert resp.error_code() in ("validation_failed", "payload_too_large")
    assert len(resp.text) < 4096  # the error does not echo the megabyte back
    assert table_counts() == before


@pytest.mark.parametrize("payload", [*SQL, "A" * 4000])
def test_sql_and_long_values_in_paths_and_queries(
    server: Server,
    admin: AgentCtx,
    make_room: Callable[..., dict[str, object]],
    table_counts: Callable[[], dict[str, int]],
    payload: str,
) -> None:
    room = make_room(admin)
    seg = quote(payload, safe="")
    before = table_counts()
    checks = [
        (admin.api.get(f"/api/v1/rooms/{seg}"), {400}),
        (admin.api.get(f"/api/v1/agents/{seg}/tokens"), {400}),
        (admin.api.delete(f"/api/v1/rooms/{room['id']}/members/{seg}"), {400}),
        (admin.api.delete(f"/api/v1/tokens/{seg}"), {404}),
        (admin.api.get(f"/api/v1/rooms/{room['id']}/messages", params={"cursor": payload}), {400}),
        (admin.api.get(f"/api/v1/rooms/{room['id']}/messages", params={"limit": payload}), {400}),
        (admin.api.get(f"/api/v1/rooms/{room['id']}/messages", params={"after": payload}), {400}),
        (admin.api.get("/api/v1/audit", params={"type": payload}), {400}),
        (admin.api.get("/api/v1/audit", params={"cursor": payload}), {400}),
        (server.api(payload).get("/api/v1/rooms"), {401}),
        (server.api(payload).post("/api/v1/sessions"), {401}),
    ]
    for resp, expected in checks:
        assert resp.status in expected, (payload[:40], resp.status, resp.text[:300])
        assert resp.error_code() is not None
    # The one failed token exchange is audited (login-failed); nothing else changes.
    assert table_counts() == dict(before, audit_events=before["audit_events"] + 1)
