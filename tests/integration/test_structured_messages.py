"""Structured messages, threads and mentions as they are posted (issue 11, §3 and §4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import Response
from tests.realtime_support import Socket, ok, run
from tests.servers import AgentCtx


def _post(agent: AgentCtx, room: dict[str, Any], **body: Any) -> Response:
    return agent.api.post(f"/api/v1/rooms/{room['id']}/messages", body)


def test_a_plain_message_has_the_defaults(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    message = _post(alice, room, body="hello").body
    assert message["kind"] == "text" and message["data"] is None
    assert message["replyTo"] is None and message["threadRoot"] is None
    assert message["mentions"] == [] and message["mentionsRoom"] is False
    assert message["editedAt"] is None and message["redactedAt"] is None


def test_replies_share_their_threads_root(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    root = _post(alice, room, body="root").body
    reply = _post(alice, room, body="reply", replyTo=root["seq"]).body
    deeper = _post(alice, room, body="reply to the reply", replyTo=reply["seq"]).body
    assert (reply["replyTo"], reply["threadRoot"]) == (root["seq"], root["seq"])
    assert (deeper["replyTo"], deeper["threadRoot"]) == (reply["seq"], root["seq"])


def test_a_reply_to_an_unknown_seq_is_400_and_stores_nothing(make_agent, make_room, sql):
    alice = make_agent()
    room, other = make_room(alice), make_room(alice)
    assert _post(alice, other, body="elsewhere").status == 201  # seq 1 in another room
    for reply_to in (1, 99, 0, -1):
        resp = _post(alice, room, body="x", replyTo=reply_to)
        assert resp.status == 400, (reply_to, resp.text)
        assert resp.error_code() == "validation_failed"
        assert "replyTo" in resp.body["error"]["details"]
    assert sql("SELECT count(*) FROM messages WHERE room_id = %s", room["id"]) == [(0,)]
    assert sql("SELECT last_seq FROM rooms WHERE id = %s", room["id"]) == [(0,)]


def test_kind_and_data(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    data = {"task": "review", "files": ["a.py", "b.py"], "priority": 2, "nested": {"ok": True}}
    message = _post(alice, room, body="please review", kind="task.review", data=data).body
    assert message["kind"] == "task.review" and message["data"] == data
    # body may be empty when data carries the message
    only_data = _post(alice, room, kind="status", data={"state": "done"})
    assert only_data.status == 201 and only_data.body["body"] == ""
    listed = alice.api.get(f"/api/v1/rooms/{room['id']}/messages").body["messages"]
    assert listed[1]["data"] == data and listed[0]["data"] == {"state": "done"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"body": "x", "kind": "Task"}, 400, "kind"),
        ({"body": "x", "kind": "a" * 33}, 400, "kind"),
        ({"body": "x", "kind": ""}, 400, "kind"),
        ({"body": "x", "data": [1, 2]}, 400, "data"),
        ({"body": "x", "data": "text"}, 400, "data"),
        ({"body": "", "kind": "status"}, 400, "body"),
        ({"body": "x", "data": {"blob": "y" * 17000}}, 413, "data"),
        ({"body": "x", "replyTo": "1"}, 400, "replyTo"),
        # PostgreSQL's jsonb refuses \u0000: found by schemathesis as a 500 before
        ({"body": "x", "data": {"k": "a\x00b"}}, 400, "data"),
        ({"body": "x", "data": {"a\x00": [{"deep": "\x00"}]}}, 400, "data"),
    ],
)
def test_bad_structured_fields_are_refused(
    make_agent, make_room, table_counts, body, status, field
):
    alice = make_agent()
    room = make_room(alice)
    before = table_counts()
    resp = alice.api.post(f"/api/v1/rooms/{room['id']}/messages", body)
    assert resp.status == status, resp.text
    assert field in resp.body["error"]["details"], resp.text
    assert table_counts() == before


def test_mentions_name_members_only(admin, make_agent, make_room, sql):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    assert bob.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201
    text = f"@{bob.name} and @{carol.name} and @nobody-here, mail me at x@{bob.name}.org"
    message = _post(alice, room, body=text).body
    assert message["mentions"] == [bob.id]  # carol is no member; x@… is no mention
    assert message["mentionsRoom"] is False
    assert message["body"] == text  # the text itself is untouched
    rows = sql("SELECT agent_id::text FROM mentions WHERE room_id = %s", room["id"])
    assert rows == [(bob.id,)]


def test_at_room_mentions_every_member_but_the_sender(make_agent, make_room, sql):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    for agent in (bob, carol):
        assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201
    message = _post(alice, room, body="@room standup in 5").body
    assert message["mentionsRoom"] is True and message["mentions"] == []
    rows = sql("SELECT agent_id::text FROM mentions WHERE room_id = %s", room["id"])
    assert sorted(r[0] for r in rows) == sorted([bob.id, carol.id])


def test_mention_new_reaches_the_mentioned_agent_only(server, make_agent, make_room):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    for agent in (bob, carol):
        assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201

    async def scenario() -> None:
        b, c = Socket(server.base_url), Socket(server.base_url)
        for sock in (b, c):
            sock.client.on("mention:new", sock._recorder("mention:new"), namespace="/agents")
        try:
            await b.connect(bob.jwt)
            await c.connect(carol.jwt)
            first = await asyncio.to_thread(_post, alice, room, body=f"@{bob.name} look")
            assert first.status == 201
            barrier = await asyncio.to_thread(_post, alice, room, body="barrier")
            await c.wait_until(lambda: barrier.body["seq"] in _seqs(c))
            await b.wait_until(lambda: bool(b.events["mention:new"]))
            [event] = b.events["mention:new"]
            assert event["message"]["seq"] == first.body["seq"]
            assert event["room"] == {"id": room["id"], "slug": room["slug"]}
            assert c.events["mention:new"] == []  # carol was not mentioned

            everyone = await asyncio.to_thread(_post, alice, room, body="@room hi")
            await c.wait_until(lambda: bool(c.events["mention:new"]))
            assert c.events["mention:new"][0]["message"]["seq"] == everyone.body["seq"]
            # over the socket too
            sent = ok(await b.call("message:send", {"roomId": room["slug"], "body": "@room x"}))
            assert sent["message"]["mentionsRoom"] is True
        finally:
            await b.close()
            await c.close()

    run(scenario())


def _seqs(sock: Socket) -> list[int]:
    return [m["seq"] for m in sock.events["message:new"]]


def test_data_with_nan_or_infinity_over_a_socket_is_refused_and_stores_nothing(
    server, make_agent, make_room, sql
):
    """Python's JSON (the socket client's) writes NaN and Infinity; jsonb stores neither. The
    REST parser refuses them; over a socket the service must too, not fail in the database."""
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            for bad in (float("nan"), float("inf")):
                ack = await sock.call(
                    "message:send", {"roomId": room["id"], "body": "x", "data": {"v": bad}}
                )
                assert ack["ok"] is False, ack
                assert ack["error"]["code"] == "validation_failed", ack
                assert "data" in ack["error"]["details"], ack
            good = ok(await sock.call("message:send", {"roomId": room["id"], "body": "fine"}))
            assert good["message"]["seq"] == 1  # nothing was stored before it
        finally:
            await sock.close()

    run(scenario())
    assert sql("SELECT count(*) FROM messages WHERE room_id = %s", room["id"]) == [(1,)]
