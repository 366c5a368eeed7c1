"""Read state and the inbox (issue 11, §6): PUT /api/v1/rooms/{id}/read, the read state in Room
objects, GET /api/v1/inbox, and room:read / read:update over socket.io."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.test_metrics import scrape, value
from tests.realtime_support import Socket, blocking, error_code, ok, run

READ_STATE = ("lastReadSeq", "unreadCount", "unreadMentions")


def _post(agent, room: Any, body: str) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room}/messages", {"body": body})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _join(agent, room: Any) -> None:
    resp = agent.api.post(f"/api/v1/rooms/{room}/members")
    assert resp.status == 201, resp.text


def _mark(agent, room: Any, seq: Any):
    return agent.api.put(f"/api/v1/rooms/{room}/read", {"seq": seq})


def _state(agent, room: Any) -> tuple[Any, Any, Any]:
    resp = agent.api.get(f"/api/v1/rooms/{room}")
    assert resp.status == 200, resp.text
    return tuple(resp.body[k] for k in READ_STATE)


def _inbox(agent) -> dict[str, Any]:
    resp = agent.api.get("/api/v1/inbox")
    assert resp.status == 200, resp.text
    return dict(resp.body)


def test_a_new_member_has_read_nothing_and_its_own_messages_are_never_unread(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    assert tuple(room[k] for k in READ_STATE) == (0, 0, 0)  # POST /rooms: the creator's state
    for n in range(3):
        _post(alice, room["id"], f"m{n}")
    _join(bob, room["slug"])
    # 0 at join: everything before the join is unread.
    assert _state(bob, room["id"]) == (0, 3, 0)
    assert _state(alice, room["id"]) == (0, 0, 0)
    _post(bob, room["id"], "mine")
    assert _state(bob, room["id"]) == (0, 3, 0)
    assert _state(alice, room["id"]) == (0, 1, 0)
    # The listing carries it too (one query for every room).
    listed = {r["id"]: r for r in bob.api.get("/api/v1/rooms").body["rooms"]}
    assert tuple(listed[room["id"]][k] for k in READ_STATE) == (0, 3, 0)


def test_the_marker_only_moves_forward(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    for n in range(4):
        _post(alice, room["id"], f"m{n}")

    moved = _mark(bob, room["id"], 2)
    assert moved.status == 200, moved.text
    assert moved.body == {"roomId": room["id"], "lastReadSeq": 2}
    assert _state(bob, room["id"]) == (2, 2, 0)
    # Lower or equal: a no-op, answered with the stored marker (by slug too).
    for lower in (1, 0, 2):
        again = _mark(bob, room["slug"], lower)
        assert again.status == 200, again.text
        assert again.body == {"roomId": room["id"], "lastReadSeq": 2}
    assert _state(bob, room["id"]) == (2, 2, 0)
    # Up to lastSeq is fine; one past it is a 400 that changes nothing.
    assert _mark(bob, room["id"], 4).body == {"roomId": room["id"], "lastReadSeq": 4}
    beyond = _mark(bob, room["id"], 5)
    assert beyond.status == 400 and beyond.error_code() == "validation_failed", beyond.text
    assert "seq" in beyond.body["error"]["details"]
    assert _state(bob, room["id"]) == (4, 0, 0)
    # Someone else's marker is its own.
    assert _state(alice, room["id"]) == (0, 0, 0)


def test_a_bad_body_is_a_400(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _post(alice, room["id"], "one")
    path = f"/api/v1/rooms/{room['id']}/read"
    for body in (
        {},
        {"seq": -1},
        {"seq": "1"},
        {"seq": 1.5},
        {"seq": True},
        {"seq": None},
        {"seq": 2**64},
        {"seq": 1, "extra": 1},
        [1],
    ):
        resp = alice.api.put(path, body)
        assert resp.status == 400, (body, resp.text)
        assert resp.error_code() == "validation_failed", (body, resp.text)
    raw = alice.api.request("PUT", path, raw=b"{nope", headers={"Content-Type": "application/json"})
    assert raw.status == 400 and raw.error_code() == "validation_failed", raw.text
    assert _state(alice, room["id"]) == (0, 0, 0)


def test_only_members_have_a_marker(make_agent, make_room):
    alice, carol = make_agent(), make_agent()
    public = make_room(alice)
    private = make_room(alice, visibility="private")
    _post(alice, public["id"], "hello")
    _post(alice, private["id"], "secret")

    refused = _mark(carol, public["id"], 1)
    assert refused.status == 403 and refused.error_code() == "forbidden", refused.text
    hidden = _mark(carol, private["id"], 1)
    assert hidden.status == 404 and hidden.error_code() == "not_found", hidden.text
    missing = _mark(carol, uuid.uuid4(), 0)
    assert missing.status == 404 and missing.error_code() == "not_found", missing.text
    unknown_slug = _mark(carol, "no-such-room-here", 0)
    assert unknown_slug.status == 404 and unknown_slug.error_code() == "not_found"

    # A non-member sees the room without anyone's read state.
    seen = carol.api.get(f"/api/v1/rooms/{public['id']}").body
    assert seen["member"] is False
    assert all(seen[k] is None for k in READ_STATE)
    listed = {r["id"]: r for r in carol.api.get("/api/v1/rooms").body["rooms"]}
    assert all(listed[public["id"]][k] is None for k in READ_STATE)


def test_tombstones_are_not_unread(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    first = _post(alice, room["id"], "keep")
    second = _post(alice, room["id"], "oops")
    assert _state(bob, room["id"]) == (0, 2, 0)
    assert alice.api.delete(f"/api/v1/rooms/{room['id']}/messages/{second['seq']}").status == 204
    assert _state(bob, room["id"]) == (0, 1, 0)
    # The newest message that is no tombstone is the inbox's lastMessage.
    [entry] = [e for e in _inbox(bob)["rooms"] if e["room"]["id"] == room["id"]]
    assert entry["lastMessage"]["seq"] == first["seq"]
    assert entry["lastMessage"]["body"] == "keep"


def test_unread_mentions_count_names_and_at_room(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    _post(alice, room["id"], f"@{bob.name} look")
    _post(alice, room["id"], "nothing for you")
    _post(alice, room["id"], "@room all of you")
    assert _state(bob, room["id"]) == (0, 3, 2)
    assert _state(alice, room["id"]) == (0, 0, 0)  # @room does not count its sender
    assert _mark(bob, room["id"], 1).status == 200
    assert _state(bob, room["id"]) == (1, 2, 1)
    assert _mark(bob, room["id"], 3).status == 200
    assert _state(bob, room["id"]) == (3, 0, 0)
    unread = bob.api.get("/api/v1/mentions", params={"unread": "true"}).body
    assert [m for m in unread["mentions"] if m["room"]["id"] == room["id"]] == []


def test_reading_an_archived_room_still_moves_the_marker(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    _post(alice, room["id"], "last words")
    archived = alice.api.post(f"/api/v1/rooms/{room['id']}/archive")
    assert archived.status == 200 and archived.body["archived"] is True
    # The archive answer carries the caller's read state.
    assert tuple(archived.body[k] for k in READ_STATE) == (0, 0, 0)
    resp = _mark(bob, room["id"], 1)
    assert resp.status == 200 and resp.body["lastReadSeq"] == 1, resp.text


def test_patch_and_dm_answers_carry_the_callers_read_state(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    _post(bob, room["id"], "for alice")
    patched = alice.api.patch(f"/api/v1/rooms/{room['id']}", {"topic": "t"})
    assert patched.status == 200, patched.text
    assert tuple(patched.body[k] for k in READ_STATE) == (0, 1, 0)

    created = alice.api.post("/api/v1/dms", {"agentId": bob.name})
    assert created.status == 201, created.text
    assert tuple(created.body[k] for k in READ_STATE) == (0, 0, 0)
    _post(alice, created.body["id"], "psst")
    found = bob.api.post("/api/v1/dms", {"agentId": alice.name})
    assert found.status == 200, found.text
    assert tuple(found.body[k] for k in READ_STATE) == (0, 1, 0)


def test_the_inbox_lists_rooms_with_something_unread_most_recent_first(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    quiet, first, second, read, own = (make_room(alice) for _ in range(5))
    for room in (quiet, first, second, read, own):
        _join(bob, room["id"])
    _post(alice, read["id"], "read already")
    assert _mark(bob, read["id"], 1).status == 200
    _post(bob, own["id"], "bob's own")
    _post(alice, first["id"], "first 1")
    _post(alice, first["id"], "first 2")
    _post(alice, second["id"], f"@{bob.name} second")

    inbox = _inbox(bob)
    assert set(inbox) == {"rooms", "totalUnread"}
    assert [e["room"]["id"] for e in inbox["rooms"]] == [second["id"], first["id"]]
    top, below = inbox["rooms"]
    assert set(top) == {"room", "unreadCount", "unreadMentions", "lastMessage"}
    assert (top["unreadCount"], top["unreadMentions"]) == (1, 1)
    assert (below["unreadCount"], below["unreadMentions"]) == (2, 0)
    assert top["room"]["unreadCount"] == 1 and top["room"]["lastReadSeq"] == 0
    assert top["room"]["member"] is True
    assert below["lastMessage"]["body"] == "first 2" and below["lastMessage"]["seq"] == 2
    assert below["lastMessage"]["roomId"] == first["id"]
    assert inbox["totalUnread"] == 3

    # New activity puts a room on top; reading it to the end takes it out.
    _post(alice, first["id"], "first 3")
    assert [e["room"]["id"] for e in _inbox(bob)["rooms"]] == [first["id"], second["id"]]
    assert _mark(bob, first["id"], 3).status == 200
    inbox = _inbox(bob)
    assert [e["room"]["id"] for e in inbox["rooms"]] == [second["id"]]
    assert inbox["totalUnread"] == 1
    # The sender's own messages are not in its inbox: only bob's post is.
    [alice_entry] = _inbox(alice)["rooms"]
    assert alice_entry["room"]["id"] == own["id"] and alice_entry["unreadCount"] == 1


def test_the_inbox_holds_dm_rooms_too(make_agent):
    alice, bob = make_agent(), make_agent()
    dm = alice.api.post("/api/v1/dms", {"agentId": bob.name}).body
    assert _inbox(bob) == {"rooms": [], "totalUnread": 0}
    message = _post(alice, dm["id"], "just between us")
    inbox = _inbox(bob)
    [entry] = inbox["rooms"]
    assert entry["room"]["id"] == dm["id"] and entry["room"]["kind"] == "dm"
    assert entry["lastMessage"]["id"] == message["id"]
    assert inbox["totalUnread"] == 1
    assert _mark(bob, dm["slug"], message["seq"]).status == 200
    assert _inbox(bob) == {"rooms": [], "totalUnread": 0}


def test_read_marks_are_counted_not_audited(server, admin, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room["id"])
    _post(alice, room["id"], "one")
    _post(alice, room["id"], "two")
    newest_event = admin.api.get("/api/v1/audit", params={"limit": 1}).body["events"]
    before = value(scrape(server), "agenthub_read_marks_total")
    assert _mark(bob, room["id"], 1).status == 200
    assert _mark(bob, room["id"], 1).status == 200  # no-op: not counted
    assert _mark(bob, room["id"], 2).status == 200
    assert value(scrape(server), "agenthub_read_marks_total") == before + 2
    assert admin.api.get("/api/v1/audit", params={"limit": 1}).body["events"] == newest_event


# --- socket.io ---------------------------------------------------------------------------


def _watch_reads(sock: Socket) -> None:
    sock.client.on("read:update", sock._recorder("read:update"), namespace="/agents")
    sock.client.on("room:updated", sock._recorder("room:updated"), namespace="/agents")


def _updates(sock: Socket) -> list[int]:
    return [u["lastReadSeq"] for u in sock.events["read:update"]]


def test_room_read_over_the_socket_reaches_the_agents_other_sockets(server, make_agent, make_room):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    private = make_room(alice, visibility="private")
    _join(bob, room["id"])
    for n in range(5):
        _post(alice, room["id"], f"m{n}")

    async def scenario() -> None:
        first, second, other = (
            Socket(server.base_url),
            Socket(server.base_url),
            Socket(server.base_url),
        )
        for sock in (first, second, other):
            _watch_reads(sock)
        try:
            await first.connect(bob.jwt)
            await second.connect(bob.jwt)
            await other.connect(alice.jwt)

            ack = ok(await first.call("room:read", {"roomId": room["slug"], "seq": 2}))
            assert ack == {"ok": True, "roomId": room["id"], "lastReadSeq": 2}
            await second.wait_for("read:update")
            assert second.events["read:update"] == [{"roomId": room["id"], "lastReadSeq": 2}]
            # A lower seq: acked with the stored marker, announced to nobody.
            again = ok(await first.call("room:read", {"roomId": room["id"], "seq": 1}))
            assert again["lastReadSeq"] == 2
            # A REST mark goes to every socket of the agent. Each socket gets its events in
            # order, so once this one arrived, an earlier one would have arrived first.
            assert (await blocking(_mark, bob, room["id"], 3)).status == 200
            await first.wait_for("read:update", lambda u: u["lastReadSeq"] == 3)
            await second.wait_for("read:update", lambda u: u["lastReadSeq"] == 3)
            assert _updates(first) == [3]  # not its own room:read
            assert _updates(second) == [2, 3]  # not the no-op
            assert (await blocking(_state, bob, room["id"])) == (3, 2, 0)
            # Another agent hears nothing of bob's marker.
            assert other.events["read:update"] == []

            # Refusals, acked like every event's.
            beyond = await first.call("room:read", {"roomId": room["id"], "seq": 6})
            assert error_code(beyond) == "validation_failed"
            for bad in ({"roomId": room["id"]}, {"roomId": room["id"], "seq": -1}, {"seq": 1}):
                assert error_code(await first.call("room:read", bad)) == "validation_failed"
            outsider = Socket(server.base_url)
            try:
                await outsider.connect(carol.jwt)
                public_ack = await outsider.call("room:read", {"roomId": room["id"], "seq": 1})
                assert error_code(public_ack) == "forbidden"
                private_ack = await outsider.call("room:read", {"roomId": private["id"], "seq": 0})
                assert error_code(private_ack) == "not_found"
            finally:
                await outsider.close()

            # room:updated goes to every member alike: nobody's read state is in it.
            patched = await blocking(alice.api.patch, f"/api/v1/rooms/{room['id']}", {"topic": "x"})
            assert patched.status == 200
            update = await second.wait_for("room:updated")
            assert update["member"] is True
            assert all(update[k] is None for k in READ_STATE)
        finally:
            for sock in (first, second, other):
                await sock.close()

    run(scenario())
