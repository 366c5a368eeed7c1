"""Rooms: create, list what the caller may see (with `member`), get; private rooms stay hidden."""

from __future__ import annotations

import uuid

import pytest

ROOM_KEYS = {
    "id",
    "slug",
    "name",
    "visibility",
    "createdBy",
    "lastSeq",
    "createdAt",
    "member",
    "kind",
    "topic",
    "archived",
    "lastReadSeq",
    "unreadCount",
    "unreadMentions",
}


RULE = "an id (UUID) or a name (lowercase letters, digits and '-')"


def slug() -> str:
    return f"room-{uuid.uuid4().hex[:10]}"


def test_create_room_makes_the_creator_a_member(make_agent, table_counts):
    alice = make_agent()
    s = slug()
    before = table_counts()
    resp = alice.api.post("/api/v1/rooms", {"slug": s, "name": "Room A", "visibility": "private"})
    assert resp.status == 201, resp.text
    assert set(resp.body) == ROOM_KEYS
    assert resp.headers["location"] == f"/api/v1/rooms/{resp.body['id']}"
    assert resp.body["slug"] == s
    assert resp.body["name"] == "Room A"
    assert resp.body["visibility"] == "private"
    assert resp.body["createdBy"] == alice.id
    assert resp.body["member"] is True
    assert resp.body["lastSeq"] == 0
    after = table_counts()
    assert after["rooms"] == before["rooms"] + 1
    assert after["room_members"] == before["room_members"] + 1
    members = alice.api.get(f"/api/v1/rooms/{resp.body['id']}/members").body["members"]
    assert [m["agentId"] for m in members] == [alice.id]


def test_defaults_public_and_name_from_slug(make_agent):
    s = slug()
    resp = make_agent().api.post("/api/v1/rooms", {"slug": s})
    assert resp.status == 201
    assert resp.body["visibility"] == "public"
    assert resp.body["name"] == s


def test_duplicate_slug_is_409(make_agent, table_counts):
    a, b = make_agent(), make_agent()
    s = slug()
    assert a.api.post("/api/v1/rooms", {"slug": s}).status == 201
    before = table_counts()
    resp = b.api.post("/api/v1/rooms", {"slug": s, "visibility": "private"})
    assert resp.status == 409
    assert resp.error_code() == "conflict"
    assert resp.body["error"]["details"] == {"slug": [f"{s!r} is taken"]}
    assert table_counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Bad Slug"},
        {"slug": ""},
        {"slug": "-x"},
        {"slug": "x" * 65},
        {"slug": "ok-slug-1", "visibility": "secret"},
        {"slug": "ok-slug-2", "name": "  "},
        {"slug": "ok-slug-3", "name": "n" * 201},
        {"name": "no slug"},
    ],
)
def test_bad_room_is_400(make_agent, table_counts, body):
    agent = make_agent()
    before = table_counts()
    resp = agent.api.post("/api/v1/rooms", body)
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert resp.body["error"]["details"]
    assert table_counts() == before


def test_list_shows_public_and_own_private_rooms_with_member_flag(make_agent, make_room, admin):
    alice, bob = make_agent(), make_agent()
    public = make_room(alice, "public")
    private = make_room(alice, "private")
    bobs_private = make_room(bob, "private")

    def listed(agent) -> dict[str, dict[str, object]]:
        resp = agent.api.get("/api/v1/rooms")
        assert resp.status == 200
        slugs = [r["slug"] for r in resp.body["rooms"]]
        assert slugs == sorted(slugs)
        return {r["id"]: r for r in resp.body["rooms"]}

    seen_by_alice = listed(alice)
    assert seen_by_alice[public["id"]]["member"] is True
    assert seen_by_alice[private["id"]]["member"] is True
    assert bobs_private["id"] not in seen_by_alice

    seen_by_bob = listed(bob)
    assert seen_by_bob[public["id"]]["member"] is False
    assert private["id"] not in seen_by_bob
    assert seen_by_bob[bobs_private["id"]]["member"] is True

    seen_by_admin = listed(admin)
    assert {public["id"], private["id"], bobs_private["id"]} <= set(seen_by_admin)
    assert seen_by_admin[private["id"]]["member"] is False


def test_get_room(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    public = make_room(alice, "public")
    resp = bob.api.get(f"/api/v1/rooms/{public['id']}")
    assert resp.status == 200
    assert resp.body["id"] == public["id"]
    assert resp.body["member"] is False


def test_private_room_is_invisible_to_non_members(make_agent, make_room, admin):
    alice, bob = make_agent(), make_agent()
    private = make_room(alice, "private")
    hidden = bob.api.get(f"/api/v1/rooms/{private['id']}")
    unknown = bob.api.get(f"/api/v1/rooms/{uuid.uuid4()}")
    assert hidden.status == 404
    assert unknown.status == 404
    # Indistinguishable from a room that does not exist.
    assert hidden.body == unknown.body
    assert admin.api.get(f"/api/v1/rooms/{private['id']}").status == 200


def test_get_room_with_an_id_that_is_neither_uuid_nor_slug_is_400(make_agent):
    resp = make_agent().api.get("/api/v1/rooms/Not_A_Slug")
    assert resp.status == 400
    assert resp.body["error"]["details"] == {"id": [RULE]}


def test_get_room_by_an_unknown_slug_is_404(make_agent):
    assert make_agent().api.get("/api/v1/rooms/123").status == 404
