"""Rooms that can be changed (issue 11, §2): topic, PATCH, archive / unarchive, room:updated."""

from __future__ import annotations

from tests.realtime_support import Socket, run


def _audit_types(admin, room_id: str) -> list[str]:
    events = admin.api.get("/api/v1/audit", params={"limit": 200}).body["events"]
    return [e["type"] for e in events if e["payload"].get("roomId") == room_id]


def test_a_room_has_a_topic_and_is_not_archived_at_first(make_agent):
    alice = make_agent()
    created = alice.api.post("/api/v1/rooms", {"slug": f"t-{alice.name}", "topic": "plans"})
    assert created.status == 201, created.text
    assert created.body["topic"] == "plans"
    assert created.body["archived"] is False
    assert created.body["kind"] == "room"
    assert alice.api.get(f"/api/v1/rooms/{created.body['id']}").body["topic"] == "plans"


def test_the_creator_changes_name_and_topic(admin, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    changed = alice.api.patch(f"/api/v1/rooms/{room['slug']}", {"topic": "the plan"})
    assert changed.status == 200, changed.text
    assert changed.body["topic"] == "the plan" and changed.body["name"] == room["name"]
    renamed = alice.api.patch(f"/api/v1/rooms/{room['id']}", {"name": "Planning"})
    assert renamed.body["name"] == "Planning" and renamed.body["topic"] == "the plan"
    assert _audit_types(admin, room["id"]).count("room-updated") == 2

    assert bob.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201
    refused = bob.api.patch(f"/api/v1/rooms/{room['id']}", {"topic": "mine now"})
    assert refused.status == 403
    assert admin.api.patch(f"/api/v1/rooms/{room['id']}", {"topic": "admin"}).status == 200


def test_bad_changes_are_400_and_change_nothing(make_agent, make_room, table_counts):
    alice = make_agent()
    room = make_room(alice)
    before = table_counts()
    for body in ({}, {"topic": "x" * 1001}, {"name": "   "}, {"topic": 5}, {"color": "red"}):
        resp = alice.api.patch(f"/api/v1/rooms/{room['id']}", body)
        assert resp.status == 400, (body, resp.text)
        assert resp.error_code() == "validation_failed"
    assert table_counts() == before
    assert alice.api.get(f"/api/v1/rooms/{room['id']}").body["topic"] == ""


def test_an_archived_room_is_read_but_not_posted_to(admin, make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    path = f"/api/v1/rooms/{room['id']}"
    assert bob.api.post(f"{path}/members").status == 201
    assert bob.api.post(f"{path}/messages", {"body": "before", "clientMsgId": "b1"}).status == 201
    assert bob.api.post(f"{path}/archive").status == 403  # not the creator

    archived = alice.api.post(f"{path}/archive")
    assert archived.status == 200 and archived.body["archived"] is True
    before = table_counts()
    refused = bob.api.post(f"{path}/messages", {"body": "after"})
    assert refused.status == 409 and refused.error_code() == "room_archived"
    assert table_counts() == before
    # A retry of what was stored before is still answered with the stored message.
    again = bob.api.post(f"{path}/messages", {"body": "before", "clientMsgId": "b1"})
    assert again.status == 200 and again.body["seq"] == 1
    assert [m["body"] for m in bob.api.get(f"{path}/messages").body["messages"]] == ["before"]
    assert alice.api.post(f"{path}/archive").status == 200  # again: no change, no audit

    unarchived = alice.api.post(f"{path}/unarchive")
    assert unarchived.status == 200 and unarchived.body["archived"] is False
    assert bob.api.post(f"{path}/messages", {"body": "after"}).status == 201
    types = _audit_types(admin, room["id"])
    assert types.count("room-archived") == 1 and types.count("room-unarchived") == 1


def test_room_updated_reaches_the_members_sockets(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    assert bob.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201

    async def scenario() -> None:
        sock = Socket(server.base_url)
        sock.client.on("room:updated", sock._recorder("room:updated"), namespace="/agents")
        try:
            await sock.connect(bob.jwt)
            resp = await _patch(alice, room["id"], {"topic": "live"})
            assert resp.status == 200
            await sock.wait_until(lambda: bool(sock.events["room:updated"]))
            [update] = sock.events["room:updated"]
            assert update["id"] == room["id"] and update["topic"] == "live"
            assert update["member"] is True
        finally:
            await sock.close()

    run(scenario())


async def _patch(agent, room_id: str, body: dict[str, str]):
    import asyncio

    return await asyncio.to_thread(agent.api.patch, f"/api/v1/rooms/{room_id}", body)
