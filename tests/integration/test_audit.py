"""GET /api/v1/audit: admins only, newest first, filtered by type, paged by cursor."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from agenthub import cursors


def events(admin: Any, **params: Any) -> list[dict[str, Any]]:
    resp = admin.api.get("/api/v1/audit", params=params)
    assert resp.status == 200, resp.text
    return list(resp.body["events"])


def test_non_admin_is_403(make_agent):
    resp = make_agent().api.get("/api/v1/audit")
    assert resp.status == 403
    assert resp.error_code() == "forbidden"


def test_requires_a_session(server):
    assert server.api().get("/api/v1/audit").status == 401


def test_every_operation_leaves_its_event(server, admin, make_agent):
    alice = make_agent()  # agent-created, token-issued, login (by the fixture)
    bob = make_agent()
    room = alice.api.post("/api/v1/rooms", {"slug": f"au-{uuid.uuid4().hex[:8]}"}).body
    bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    msg = alice.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "audited"}).body
    bob.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}")
    prefix = bob.api_token.split("_")[1]
    admin.api.delete(f"/api/v1/tokens/{prefix}")

    def one(event_type: str, **match: object) -> dict[str, Any]:
        found = [
            e
            for e in events(admin, type=event_type, limit=200)
            if all(e["payload"].get(k) == v for k, v in match.items())
        ]
        assert len(found) == 1, (event_type, match, found)
        assert set(found[0]) == {"id", "type", "agentId", "payload", "createdAt"}
        assert found[0]["type"] == event_type
        return found[0]

    assert one("agent-created", createdAgentId=alice.id)["agentId"] == admin.id
    issued = one("token-issued", prefix=alice.api_token.split("_")[1])
    assert issued["payload"]["forAgentId"] == alice.id
    assert one("login", prefix=alice.api_token.split("_")[1])["agentId"] == alice.id
    assert one("room-created", roomId=room["id"])["agentId"] == alice.id
    assert one("member-added", roomId=room["id"], memberId=alice.id)["agentId"] == alice.id
    assert one("member-added", roomId=room["id"], memberId=bob.id)["agentId"] == bob.id
    sent = one("message-sent", messageId=msg["id"])
    assert sent["agentId"] == alice.id
    assert sent["payload"]["seq"] == 1
    assert one("member-removed", roomId=room["id"], memberId=bob.id)["agentId"] == bob.id
    assert one("token-revoked", prefix=prefix)["agentId"] == admin.id


def test_newest_first_and_type_filter(admin, make_room):
    # created_at is the transaction's start time, so order is checked by known events.
    first, second = make_room(admin), make_room(admin)
    rows = events(admin, limit=50)
    room_ids = [e["payload"].get("roomId") for e in rows if e["type"] == "room-created"]
    assert room_ids[:2] == [second["id"], first["id"]]
    only = events(admin, type="member-added", limit=50)
    assert only
    assert {e["type"] for e in only} == {"member-added"}
    assert [e["payload"]["roomId"] for e in only[:2]] == [second["id"], first["id"]]


def test_cursor_paging_neither_skips_nor_repeats(admin, make_room):
    for _ in range(5):
        make_room(admin)
    everything = [e["id"] for e in events(admin, type="room-created", limit=200)]
    assert len(everything) >= 5
    paged: list[object] = []
    cursor = None
    while True:
        params: dict[str, object] = {"type": "room-created", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        resp = admin.api.get("/api/v1/audit", params=params)
        assert resp.status == 200
        assert len(resp.body["events"]) <= 2
        paged += [e["id"] for e in resp.body["events"]]
        cursor = resp.body["nextCursor"]
        if cursor is None:
            break
    assert paged == everything


def test_cursor_is_bound_to_its_filter(admin, make_room):
    make_room(admin)
    make_room(admin)
    cursor = admin.api.get("/api/v1/audit", params={"type": "room-created", "limit": 1}).body[
        "nextCursor"
    ]
    assert cursor
    resp = admin.api.get("/api/v1/audit", params={"type": "login", "cursor": cursor})
    assert resp.status == 400
    resp = admin.api.get("/api/v1/audit", params={"cursor": cursor})
    assert resp.status == 400


@pytest.mark.parametrize(
    "params",
    [
        {"type": "nonsense"},
        {"type": "x" * 65},
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
        {"cursor": "not-a-cursor"},
        {"cursor": cursors.encode("messages", "*", 3)},
    ],
)
def test_bad_parameters_are_400(admin, params):
    resp = admin.api.get("/api/v1/audit", params=params)
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"


def test_agent_filter_keeps_that_agents_events_by_id_name_or_me(admin, make_agent, make_room):
    worker = make_agent()
    room = make_room(worker)
    make_room(admin)
    by_name = events(admin, agent=worker.name)
    assert by_name and {e["agentId"] for e in by_name} == {worker.id}
    assert "room-created" in {e["type"] for e in by_name}
    assert room["id"] in {e["payload"].get("roomId") for e in by_name}
    assert events(admin, agent=worker.id) == by_name
    combined = events(admin, agent=worker.name, type="login")
    assert combined and {(e["type"], e["agentId"]) for e in combined} == {("login", worker.id)}
    mine = events(admin, agent="me", limit=5)
    assert mine and {e["agentId"] for e in mine} == {admin.id}


def test_agent_filter_pages_and_binds_its_cursor(admin, make_agent, make_room):
    worker = make_agent()
    for _ in range(3):
        make_room(worker)
    first = admin.api.get("/api/v1/audit", params={"agent": worker.name, "limit": 2})
    assert first.status == 200 and len(first.body["events"]) == 2
    cursor = first.body["nextCursor"]
    rest = events(admin, agent=worker.id, cursor=cursor, limit=50)  # id or name: same filter
    seen = [e["id"] for e in first.body["events"]] + [e["id"] for e in rest]
    assert len(seen) == len(set(seen)) == len(events(admin, agent=worker.name, limit=50))
    assert admin.api.get("/api/v1/audit", params={"cursor": cursor}).status == 400


def test_agent_filter_unknown_name_is_404_unknown_id_matches_nothing(admin):
    resp = admin.api.get("/api/v1/audit", params={"agent": "no-such-agent-here"})
    assert resp.status == 404 and resp.error_code() == "not_found"
    assert events(admin, agent=str(uuid.uuid4())) == []
    for value in ("Not A Name!", ""):
        bad = admin.api.get("/api/v1/audit", params={"agent": value})
        assert bad.status == 400 and bad.error_code() == "validation_failed", value
