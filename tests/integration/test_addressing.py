"""Rooms by slug, agents by name or ``me``, in every path and socket payload (issue 11, §1);
``POST /rooms/{id}/members`` with no body adds the caller."""

from __future__ import annotations

import uuid

import pytest

from tests.realtime_support import Socket, error_code, ok, run


def test_a_room_is_reached_by_its_slug_everywhere(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    slug, room_id = room["slug"], room["id"]

    got = alice.api.get(f"/api/v1/rooms/{slug}")
    assert got.status == 200 and got.body["id"] == room_id
    posted = alice.api.post(f"/api/v1/rooms/{slug}/messages", {"body": "by slug"})
    assert posted.status == 201, posted.text
    assert posted.body["roomId"] == room_id
    # Location names the room by its id, whatever the request used.
    assert posted.headers["location"] == f"/api/v1/rooms/{room_id}/messages/1"
    listed = alice.api.get(f"/api/v1/rooms/{slug}/messages")
    assert [m["body"] for m in listed.body["messages"]] == ["by slug"]
    members = alice.api.get(f"/api/v1/rooms/{slug}/members")
    assert [m["agentId"] for m in members.body["members"]] == [alice.id]


def test_an_agent_is_reached_by_its_name_or_me(admin, make_agent, make_room):
    bob = make_agent()
    assert admin.api.get(f"/api/v1/agents/{bob.name}").body["id"] == bob.id
    assert bob.api.get("/api/v1/agents/me").body["id"] == bob.id
    assert bob.api.get(f"/api/v1/agents/{bob.name}").body["id"] == bob.id
    tokens = admin.api.get(f"/api/v1/agents/{bob.name}/tokens")
    assert tokens.status == 200 and len(tokens.body["tokens"]) == 1
    assert bob.api.get("/api/v1/agents/me/tokens").status == 200

    room = make_room(admin)
    added = admin.api.post(f"/api/v1/rooms/{room['slug']}/members", {"agentId": bob.name})
    assert added.status == 201 and added.body["agentId"] == bob.id
    left = bob.api.delete(f"/api/v1/rooms/{room['slug']}/members/me")
    assert left.status == 204
    gone = admin.api.get(f"/api/v1/rooms/{room['id']}/members").body["members"]
    assert bob.id not in {m["agentId"] for m in gone}


def test_an_empty_body_adds_the_caller(make_agent, make_room, table_counts):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    public = make_room(alice)
    joined = bob.api.post(f"/api/v1/rooms/{public['slug']}/members")
    assert joined.status == 201, joined.text
    assert joined.body["agentId"] == bob.id
    assert bob.api.post(f"/api/v1/rooms/{public['id']}/members", {}).status == 200  # again

    private = make_room(alice, visibility="private")
    before = table_counts()
    refused = carol.api.post(f"/api/v1/rooms/{private['slug']}/members")
    assert refused.status == 404  # private: non-members learn nothing
    assert table_counts() == before


def test_unknown_names_are_404_and_bad_shapes_400(make_agent):
    alice = make_agent()
    assert alice.api.get("/api/v1/rooms/no-such-room").status == 404
    assert alice.api.get("/api/v1/agents/no-such-agent").status == 404
    assert alice.api.get(f"/api/v1/rooms/{uuid.uuid4()}").status == 404
    for bad in ("Upper", "under_score", "x" * 65, "-dash"):
        resp = alice.api.get(f"/api/v1/rooms/{bad}")
        assert resp.status == 400, (bad, resp.text)
        assert resp.error_code() == "validation_failed"
        assert "id" in resp.body["error"]["details"]


@pytest.mark.parametrize(
    "value",
    ["123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000"],
)
def test_a_uuid_shaped_slug_or_name_is_refused_at_creation(admin, value, table_counts):
    before = table_counts()
    room = admin.api.post("/api/v1/rooms", {"slug": value})
    assert room.status == 400 and "slug" in room.body["error"]["details"]
    agent = admin.api.post("/api/v1/agents", {"name": value})
    assert agent.status == 400 and "name" in agent.body["error"]["details"]
    assert table_counts() == before


def test_me_is_a_reserved_agent_name(admin, table_counts):
    before = table_counts()
    resp = admin.api.post("/api/v1/agents", {"name": "me"})
    assert resp.status == 400
    assert resp.body["error"]["details"] == {"name": ["'me' is reserved"]}
    assert table_counts() == before


def test_socket_payloads_take_a_slug(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    slug, room_id = room["slug"], room["id"]

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(bob.jwt)
            joined = ok(await sock.call("room:join", {"roomId": slug}))
            assert joined["room"]["id"] == room_id
            sent = ok(await sock.call("message:send", {"roomId": slug, "body": "hi"}))
            assert sent["message"]["roomId"] == room_id
            synced = ok(await sock.call("room:sync", {"roomId": slug, "afterSeq": 0}))
            assert synced["roomId"] == room_id
            assert [m["body"] for m in synced["messages"]] == ["hi"]
            missing = await sock.call("room:sync", {"roomId": "no-such-room", "afterSeq": 0})
            assert error_code(missing) == "not_found"
            left = ok(await sock.call("room:leave", {"roomId": slug}))
            assert left["roomId"] == room_id
        finally:
            await sock.close()

    run(scenario())
