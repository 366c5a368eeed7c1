"""DELETE /rooms/{id}/messages/{seq} (issue 11, §3): the message becomes a tombstone in every
listing and over sockets, its mentions stop notifying, the audit trail says so once, and only its
sender or an admin, as a member, may do it."""

from __future__ import annotations

import asyncio
import urllib.parse
from typing import Any

import pytest

from tests.helpers import Response
from tests.integration.test_metrics import scrape, value
from tests.realtime_support import Socket, ok, run
from tests.servers import AgentCtx, Server

TOMBSTONE_BLANKS: dict[str, Any] = {"body": "", "data": None, "mentions": [], "mentionsRoom": False}
# What redaction keeps: every field but the content.
KEPT = ("id", "roomId", "seq", "senderId", "clientMsgId", "createdAt", "kind", "replyTo")


def _post(agent: AgentCtx, room: dict[str, Any], **body: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", body)
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _redact(agent: AgentCtx, room: dict[str, Any], seq: int | str) -> Response:
    return agent.api.delete(f"/api/v1/rooms/{room['id']}/messages/{seq}")


def _get(agent: AgentCtx, room: dict[str, Any], seq: int) -> dict[str, Any]:
    resp = agent.api.get(f"/api/v1/rooms/{room['id']}/messages/{seq}")
    assert resp.status == 200, resp.text
    return dict(resp.body)


def _join(agent: AgentCtx, room: dict[str, Any]) -> None:
    assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201


def _audited(sql: Any, room: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = sql(
        "SELECT agent_id::text, payload FROM audit_events"
        " WHERE type = 'message-redacted' AND payload->>'roomId' = %s",
        room["id"],
    )
    return rows


def test_the_sender_redacts_and_the_message_is_a_tombstone_everywhere(make_agent, make_room, sql):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room)
    root = _post(alice, room, body="root")
    secret = _post(
        alice,
        room,
        body=f"@{bob.name} the password is hunter2",
        clientMsgId="oops-1",
        kind="note",
        data={"password": "hunter2"},
        replyTo=root["seq"],
    )
    assert secret["mentions"] == [bob.id]
    assert len(bob.api.get("/api/v1/mentions").body["mentions"]) == 1

    resp = _redact(alice, room, secret["seq"])
    assert resp.status == 204 and resp.text == "", resp.text

    tombstone = _get(alice, room, secret["seq"])
    assert {k: tombstone[k] for k in TOMBSTONE_BLANKS} == TOMBSTONE_BLANKS
    assert tombstone["redactedAt"] is not None
    assert {k: tombstone[k] for k in KEPT} == {k: secret[k] for k in KEPT}
    assert tombstone["threadRoot"] == root["seq"]
    listings = [
        {},
        {"after": 0},
        {"thread": root["seq"]},
        {"kind": "note"},
    ]
    for params in listings:
        page = alice.api.get(f"/api/v1/rooms/{room['id']}/messages", params=params)
        [listed] = [m for m in page.body["messages"] if m["seq"] == secret["seq"]]
        assert listed == tombstone, params
    # the root still counts it: the thread keeps its shape
    assert _get(alice, room, root["seq"])["replyCount"] == 1
    # nothing of the content is left in the database, and it notifies nobody
    stored = sql(
        "SELECT body, data, cardinality(mentions), mentions_room, search::text FROM messages"
        " WHERE room_id = %s AND seq = %s",
        room["id"],
        secret["seq"],
    )
    assert stored == [("", None, 0, False, "")]
    assert sql("SELECT count(*) FROM mentions WHERE room_id = %s", room["id"]) == [(0,)]
    assert bob.api.get("/api/v1/mentions").body["mentions"] == []
    # audited once, with who did it and whose message it was
    [(actor, payload)] = _audited(sql, room)
    assert actor == alice.id
    assert payload == {
        "roomId": room["id"],
        "messageId": secret["id"],
        "seq": secret["seq"],
        "senderId": alice.id,
    }
    # a retried send with the same clientMsgId answers with the tombstone, not a new message
    retried = alice.api.post(
        f"/api/v1/rooms/{room['id']}/messages", {"body": "again", "clientMsgId": "oops-1"}
    )
    assert retried.status == 200 and retried.body == tombstone


def test_redacting_a_tombstone_again_is_a_204_that_changes_nothing(
    admin, make_agent, make_room, sql
):
    alice = make_agent()
    room = make_room(alice)
    _join(admin, room)
    seq = _post(alice, room, body="x")["seq"]
    assert _redact(alice, room, seq).status == 204
    first = _get(alice, room, seq)
    assert _redact(alice, room, seq).status == 204
    assert _redact(admin, room, seq).status == 204
    assert _get(alice, room, seq) == first  # same redactedAt
    assert len(_audited(sql, room)) == 1


def test_only_the_sender_or_an_admin_may_redact(admin, make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room)
    seq = _post(alice, room, body="alice's words")["seq"]
    before = table_counts()
    refused = _redact(bob, room, seq)
    assert refused.status == 403 and refused.error_code() == "forbidden", refused.text
    assert table_counts() == before
    assert _get(alice, room, seq)["body"] == "alice's words"
    # an admin must be a member, as for reading the room
    not_in = _redact(admin, room, seq)
    assert not_in.status == 403, not_in.text
    _join(admin, room)
    assert _redact(admin, room, seq).status == 204
    assert _get(bob, room, seq)["redactedAt"] is not None


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_non_members_and_bad_seqs_are_refused(make_agent, make_room, table_counts, visibility):
    alice, mallory = make_agent(), make_agent()
    room = make_room(alice, visibility)
    seq = _post(alice, room, body="hello")["seq"]
    before = table_counts()
    denied = _redact(mallory, room, seq)
    assert denied.status == (403 if visibility == "public" else 404), denied.text
    unknown = _redact(alice, room, seq + 1)
    assert unknown.status == 404 and unknown.error_code() == "not_found", unknown.text
    for bad in ("0", "-1", "x", "1.0", " 1", str(2**62 + 1), "\u0661"):  # the last: an Arabic 1
        resp = _redact(alice, room, urllib.parse.quote(bad))
        assert resp.status == 400 and "seq" in resp.body["error"]["details"], (bad, resp.text)
    gone = alice.api.delete(f"/api/v1/rooms/no-such-room-here/messages/{seq}")
    assert gone.status == 404
    assert table_counts() == before
    assert _get(alice, room, seq)["redactedAt"] is None


def test_a_sender_who_left_cannot_redact_until_back(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room)
    seq = _post(bob, room, body="bob was here")["seq"]
    assert bob.api.delete(f"/api/v1/rooms/{room['id']}/members/me").status == 204
    assert _redact(bob, room, seq).status == 403
    _join(bob, room)
    assert _redact(bob, room, seq).status == 204


def test_sockets_hear_message_redacted_after_the_message_and_sync_shows_the_tombstone(
    server: Server, make_agent, make_room
):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _join(bob, room)
    route = {"method": "DELETE", "route": "/api/v1/rooms/{id}/messages/{seq}", "status_code": "204"}
    before = scrape(server)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        sock.client.on("message:redacted", sock._recorder("message:redacted"), namespace="/agents")
        try:
            await sock.connect(bob.jwt)
            posted = await asyncio.to_thread(_post, alice, room, body="soon gone")
            resp = await asyncio.to_thread(_redact, alice, room, posted["seq"])
            assert resp.status == 204
            event = await sock.wait_for("message:redacted")
            assert event == {"roomId": room["id"], "seq": posted["seq"]}
            # the message itself was heard first
            assert [m["seq"] for m in sock.events["message:new"]] == [posted["seq"]]
            sync = ok(await sock.call("room:sync", {"roomId": room["id"], "afterSeq": 0}))
            [message] = sync["messages"]
            assert message["body"] == "" and message["redactedAt"] is not None
            # redacting again broadcasts nothing new
            again = await asyncio.to_thread(_redact, alice, room, posted["seq"])
            assert again.status == 204
            barrier = await asyncio.to_thread(_post, alice, room, body="barrier")
            await sock.wait_until(
                lambda: barrier["seq"] in [m["seq"] for m in sock.events["message:new"]]
            )
            assert len(sock.events["message:redacted"]) == 1
        finally:
            await sock.close()

    run(scenario())
    after = scrape(server)
    # counted once per redaction; each DELETE by its route pattern
    redactions = "agenthub_messages_redacted_total"
    assert value(after, redactions) == value(before, redactions) + 1
    requests = "agenthub_http_requests_total"
    assert value(after, requests, route) == value(before, requests, route) + 2
