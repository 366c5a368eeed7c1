"""IDOR: agent A's valid session used on every ``{id}`` route against agent B's objects.
Each attempt is a clear 403/404 and nothing stored changes; B's objects read back the same."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.servers import AgentCtx, Server

Attempt = tuple[str, str, Any, int]


@pytest.fixture
def victim(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, object]]
) -> dict[str, Any]:
    b = make_agent()
    private = make_room(b, visibility="private")
    public = make_room(b, visibility="public")
    for room in (private, public):
        resp = b.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "b's secret"})
        assert resp.status == 201
    tokens = b.api.get(f"/api/v1/agents/{b.id}/tokens")
    assert tokens.status == 200
    return {
        "agent": b,
        "private": private,
        "public": public,
        "prefix": tokens.body["tokens"][0]["prefix"],
    }


def snapshot(b: AgentCtx, victim: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("private", "public"):
        rid = victim[key]["id"]
        out[f"{key}-room"] = b.api.get(f"/api/v1/rooms/{rid}").body
        out[f"{key}-members"] = b.api.get(f"/api/v1/rooms/{rid}/members").body
        out[f"{key}-messages"] = b.api.get(f"/api/v1/rooms/{rid}/messages").body
    out["me"] = b.api.get("/api/v1/agents/me").body
    out["tokens"] = b.api.get(f"/api/v1/agents/{b.id}/tokens").body
    return out


def test_agent_a_cannot_reach_agent_b_objects(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    victim: dict[str, Any],
    table_counts: Callable[[], dict[str, int]],
) -> None:
    a = make_agent()
    b: AgentCtx = victim["agent"]
    priv, pub = victim["private"]["id"], victim["public"]["id"]
    attempts: list[Attempt] = [
        # a private room A is not in: as if it did not exist
        ("GET", f"/api/v1/rooms/{priv}", None, 404),
        ("GET", f"/api/v1/rooms/{priv}/members", None, 404),
        ("POST", f"/api/v1/rooms/{priv}/members", {"agentId": a.id}, 404),
        ("DELETE", f"/api/v1/rooms/{priv}/members/{b.id}", None, 404),
        ("GET", f"/api/v1/rooms/{priv}/messages", None, 404),
        ("POST", f"/api/v1/rooms/{priv}/messages", {"body": "intrusion"}, 404),
        # a public room: visible, but A may not post before joining, nor remove B
        ("POST", f"/api/v1/rooms/{pub}/messages", {"body": "intrusion"}, 403),
        ("DELETE", f"/api/v1/rooms/{pub}/members/{b.id}", None, 403),
        # B the agent, and B's tokens
        ("PATCH", f"/api/v1/agents/{b.id}", {"disabled": True}, 403),
        ("GET", f"/api/v1/agents/{b.id}/tokens", None, 403),
        ("POST", f"/api/v1/agents/{b.id}/tokens", {}, 403),
        ("DELETE", f"/api/v1/tokens/{victim['prefix']}", None, 404),
        # admin-only listings
        ("POST", "/api/v1/agents", {"name": "idor-made", "role": "admin"}, 403),
        ("GET", "/api/v1/audit", None, 403),
    ]
    before_rows = table_counts()
    before = snapshot(b, victim)
    for method, path, body, expected in attempts:
        resp = a.api.request(method, path, body)
        assert resp.status == expected, (method, path, resp.status, resp.text)
        assert resp.error_code() in {"forbidden", "not_found"}, resp.text
        assert "b's secret" not in resp.text
    assert table_counts() == before_rows
    assert snapshot(b, victim) == before
    # B's credential still works (the revocation attempt did nothing).
    assert server.api(b.api_token).post("/api/v1/sessions").status == 201


def test_private_room_never_leaks_through_listings(
    make_agent: Callable[..., AgentCtx], victim: dict[str, Any]
) -> None:
    a = make_agent()
    listed = a.api.get("/api/v1/rooms")
    assert listed.status == 200
    ids = {room["id"] for room in listed.body["rooms"]}
    assert victim["private"]["id"] not in ids
    assert victim["public"]["id"] in ids
