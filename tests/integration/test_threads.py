"""Reading threads and kinds (issue 11, §3): GET /rooms/{id}/messages?thread= and ?kind=, the
reply count of roots in every listing, one message by seq, and room:sync with both filters."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Response
from tests.realtime_support import Socket, error_code, ok, run
from tests.servers import AgentCtx


def _post(agent: AgentCtx, room: dict[str, Any], **body: Any) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", body)
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _list(agent: AgentCtx, room: dict[str, Any], **params: Any) -> Response:
    return agent.api.get(f"/api/v1/rooms/{room['id']}/messages", params=params)


def _seqs(resp: Response) -> list[int]:
    assert resp.status == 200, resp.text
    return [m["seq"] for m in resp.body["messages"]]


def _thread_room(agent: AgentCtx, room: dict[str, Any]) -> dict[str, int]:
    """Two threads interleaved with plain messages:
    1 root, 2 plain, 3 reply to 1, 4 other root, 5 reply to 3 (thread 1), 6 reply to 4."""
    root = _post(agent, room, body="root")["seq"]
    plain = _post(agent, room, body="plain")["seq"]
    first = _post(agent, room, body="first reply", replyTo=root)["seq"]
    other = _post(agent, room, body="other root")["seq"]
    deeper = _post(agent, room, body="reply to the reply", replyTo=first)["seq"]
    other_reply = _post(agent, room, body="other reply", replyTo=other)["seq"]
    return {
        "root": root,
        "plain": plain,
        "first": first,
        "other": other,
        "deeper": deeper,
        "other_reply": other_reply,
    }


def test_a_thread_is_its_root_and_every_reply_oldest_first(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    s = _thread_room(alice, room)
    thread = _list(alice, room, thread=s["root"])
    assert _seqs(thread) == [s["root"], s["first"], s["deeper"]]
    assert thread.body["hasMore"] is False and thread.body["nextCursor"] is None
    assert _seqs(_list(alice, room, thread=s["other"])) == [s["other"], s["other_reply"]]
    by_slug = alice.api.get(
        f"/api/v1/rooms/{room['slug']}/messages", params={"thread": s["root"], "after": s["root"]}
    )
    assert _seqs(by_slug) == [s["first"], s["deeper"]]  # after the root: its replies


def test_roots_carry_their_reply_count_in_every_listing(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    s = _thread_room(alice, room)
    expected = {s["root"]: 2, s["other"]: 1}  # every other message: 0 (a reply roots nothing)
    listings = [
        _list(alice, room),
        _list(alice, room, after=0),
        _list(alice, room, thread=s["root"]),
        _list(alice, room, limit=2, cursor=_list(alice, room, limit=4).body["nextCursor"]),
    ]
    for listing in listings:
        assert listing.status == 200, listing.text
        for message in listing.body["messages"]:
            assert message["replyCount"] == expected.get(message["seq"], 0), message
    one = alice.api.get(f"/api/v1/rooms/{room['slug']}/messages/{s['root']}")
    assert one.status == 200 and one.body["replyCount"] == 2 and one.body["body"] == "root"


def test_a_thread_pages_with_after_and_limit(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    root = _post(alice, room, body="root")["seq"]
    replies = [_post(alice, room, body=f"r{i}", replyTo=root)["seq"] for i in range(5)]
    _post(alice, room, body="not in the thread")
    seen: list[int] = []
    after = 0
    while True:
        page = _list(alice, room, thread=root, after=after, limit=2)
        got = _seqs(page)
        seen += got
        if not page.body["hasMore"]:
            break
        after = got[-1]
    assert seen == [root, *replies]


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_thread_refusals(make_agent, make_room, visibility):
    alice, mallory = make_agent(), make_agent()
    room = make_room(alice, visibility)
    elsewhere = make_room(alice)
    root = _post(alice, room, body="root")["seq"]
    reply = _post(alice, room, body="reply", replyTo=root)["seq"]
    for _ in range(4):
        _post(alice, elsewhere, body="seq that only exists in another room")

    unknown = _list(alice, room, thread=4)  # seq 4 is in the other room only
    assert unknown.status == 400 and "thread" in unknown.body["error"]["details"], unknown.text
    of_reply = _list(alice, room, thread=reply)
    assert of_reply.status == 400, of_reply.text
    assert f"root is seq {root}" in of_reply.body["error"]["details"]["thread"][0]
    for bad in ("0", "-1", "x", "1.5", str(2**62 + 1)):
        resp = _list(alice, room, thread=bad)
        assert resp.status == 400 and "thread" in resp.body["error"]["details"], (bad, resp.text)
    cursor = _list(alice, room, limit=1).body["nextCursor"]
    with_cursor = _list(alice, room, thread=root, cursor=cursor)
    assert with_cursor.status == 400 and "cursor" in with_cursor.body["error"]["details"]
    # a non-member: 403 for a public room, 404 for a private one (as for every read)
    denied = _list(mallory, room, thread=root)
    assert denied.status == (403 if visibility == "public" else 404), denied.text


def test_kind_filters_every_listing(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    kinds = ["text", "task", "status", "task", "text", "task"]
    for i, kind in enumerate(kinds):
        _post(alice, room, body=f"m{i}", kind=kind)
    tasks = [i + 1 for i, k in enumerate(kinds) if k == "task"]  # seqs 2, 4, 6
    assert _seqs(_list(alice, room, kind="task")) == tasks[::-1]
    assert _seqs(_list(alice, room, kind="task", after=2)) == [4, 6]
    assert _seqs(_list(alice, room, kind="nothing-of-this-kind")) == []
    # paged newest first by cursor, the cursor belonging to the kind's listing
    first = _list(alice, room, kind="task", limit=2)
    assert _seqs(first) == [6, 4] and first.body["hasMore"] is True
    cursor = first.body["nextCursor"]
    assert _seqs(_list(alice, room, kind="task", limit=2, cursor=cursor)) == [2]
    for other in ({}, {"kind": "text"}):
        resp = _list(alice, room, cursor=cursor, **other)
        assert resp.status == 400 and "cursor" in resp.body["error"]["details"], resp.text
    # and inside a thread
    root = _post(alice, room, body="root", kind="task")["seq"]
    _post(alice, room, body="chat", replyTo=root)
    done = _post(alice, room, body="done", replyTo=root, kind="task")["seq"]
    assert _seqs(_list(alice, room, thread=root, kind="task")) == [root, done]
    for bad in ("Task", "a" * 33, "1x", "x y"):
        resp = _list(alice, room, kind=bad)
        assert resp.status == 400 and "kind" in resp.body["error"]["details"], (bad, resp.text)


@pytest.mark.parametrize("visibility", ["public", "private"])
def test_one_message_by_seq(make_agent, make_room, visibility):
    alice, mallory = make_agent(), make_agent()
    room = make_room(alice, visibility)
    posted = _post(alice, room, body="hello", kind="note", data={"k": 1})
    path = f"/api/v1/rooms/{room['id']}/messages"
    got = alice.api.get(f"{path}/{posted['seq']}")
    assert got.status == 200 and got.body == posted  # what the post answered, replyCount 0
    assert alice.api.get(f"{path}/2").status == 404
    for bad in ("0", "x", "-1", "1e3", str(2**62 + 1)):
        resp = alice.api.get(f"{path}/{bad}")
        assert resp.status == 400 and "seq" in resp.body["error"]["details"], (bad, resp.text)
    denied = mallory.api.get(f"{path}/{posted['seq']}")
    assert denied.status == (403 if visibility == "public" else 404), denied.text


def test_room_sync_takes_thread_and_kind(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    s = _thread_room(alice, room)
    _post(alice, room, body="a task", kind="task")

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            sync = {"roomId": room["slug"], "afterSeq": 0}
            thread = ok(await sock.call("room:sync", {**sync, "thread": s["root"]}))
            assert [m["seq"] for m in thread["messages"]] == [s["root"], s["first"], s["deeper"]]
            assert thread["messages"][0]["replyCount"] == 2
            later = ok(await sock.call("room:sync", {**sync, "afterSeq": s["first"], "thread": 1}))
            assert [m["seq"] for m in later["messages"]] == [s["deeper"]]
            tasks = ok(await sock.call("room:sync", {**sync, "kind": "task"}))
            assert [m["body"] for m in tasks["messages"]] == ["a task"]
            plain = ok(await sock.call("room:sync", {**sync, "thread": None, "kind": None}))
            assert len(plain["messages"]) == 7
            for bad in (
                {**sync, "thread": s["first"]},  # a reply
                {**sync, "thread": 99},
                {**sync, "thread": "1"},
                {**sync, "kind": "Bad Kind"},
                {**sync, "kind": 3},
            ):
                assert error_code(await sock.call("room:sync", bad)) == "validation_failed", bad
        finally:
            await sock.close()

    run(scenario())
