"""Messages: post, idempotent retries, dense per-room seq under concurrency, and paging
(newest first by cursor, oldest first with ?after=) that neither skips nor repeats."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agenthub import cursors
from tests.helpers import Response
from tests.servers import AgentCtx

MESSAGE_KEYS = {
    "id",
    "roomId",
    "seq",
    "senderId",
    "body",
    "clientMsgId",
    "createdAt",
    "kind",
    "data",
    "replyTo",
    "threadRoot",
    "mentions",
    "mentionsRoom",
    "editedAt",
    "redactedAt",
    "replyCount",
}


def post(agent: AgentCtx, room: Any, body: str, client_msg_id: str | None = None) -> Response:
    payload: dict[str, object] = {"body": body}
    if client_msg_id is not None:
        payload["clientMsgId"] = client_msg_id
    return agent.api.post(f"/api/v1/rooms/{room['id']}/messages", payload)


def page(agent: AgentCtx, room: Any, **params: Any) -> Response:
    return agent.api.get(f"/api/v1/rooms/{room['id']}/messages", params=params)


def stored_seqs(sql: Any, room: Any) -> list[int]:
    rows = sql("SELECT seq FROM messages WHERE room_id = %s ORDER BY seq", room["id"])
    return [int(str(r[0])) for r in rows]


def test_post_message(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    resp = post(alice, room, "hello there")
    assert resp.status == 201, resp.text
    assert set(resp.body) == MESSAGE_KEYS
    assert resp.body["roomId"] == room["id"]
    assert resp.body["senderId"] == alice.id
    assert resp.body["body"] == "hello there"
    assert resp.body["seq"] == 1
    assert resp.body["clientMsgId"] is None
    assert resp.headers["location"] == f"/api/v1/rooms/{room['id']}/messages/1"
    assert post(alice, room, "second").body["seq"] == 2
    assert stored_seqs(sql, room) == [1, 2]
    assert alice.api.get(f"/api/v1/rooms/{room['id']}").body["lastSeq"] == 2


def test_unicode_round_trips(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    text = 'héllo 🌍 — "quotes" <tags> \\ \t tab'
    assert post(alice, room, text).status == 201
    assert page(alice, room).body["messages"][0]["body"] == text


def test_seq_is_per_room(make_agent, make_room):
    alice = make_agent()
    r1, r2 = make_room(alice), make_room(alice)
    assert post(alice, r1, "a").body["seq"] == 1
    assert post(alice, r1, "b").body["seq"] == 2
    assert post(alice, r2, "c").body["seq"] == 1


def test_non_member_cannot_post_or_read_public_room(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    post(alice, room, "members only")
    before = table_counts()
    resp = post(bob, room, "let me in")
    assert resp.status == 403
    assert resp.error_code() == "forbidden"
    assert page(bob, room).status == 403
    assert page(bob, room, after=0).status == 403
    assert table_counts() == before


def test_private_room_messages_are_404_for_non_members(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice, "private")
    before = table_counts()
    assert post(bob, room, "hi").status == 404
    assert page(bob, room).status == 404
    assert table_counts() == before


def test_post_to_unknown_room_is_404(make_agent):
    alice = make_agent()
    assert post(alice, {"id": str(uuid.uuid4())}, "x").status == 404


def test_left_member_can_no_longer_post(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert post(bob, room, "in").status == 201
    bob.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}")
    assert post(bob, room, "out").status == 403


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_empty_body_is_400(make_agent, make_room, table_counts, body):
    alice = make_agent()
    room = make_room(alice)
    before = table_counts()
    resp = post(alice, room, body)
    assert resp.status == 400
    assert "body" in resp.body["error"]["details"]
    assert table_counts() == before


def test_over_limit_body_is_413_and_at_limit_is_fine(server, make_agent, make_room, table_counts):
    alice = make_agent()
    room = make_room(alice)
    limit = int(server.env.get("MAX_MESSAGE_CHARS", "16000"))
    before = table_counts()
    resp = post(alice, room, "x" * (limit + 1))
    assert resp.status == 413
    assert resp.error_code() == "payload_too_large"
    assert table_counts() == before
    # The limit counts characters, not bytes.
    assert post(alice, room, "é" * limit).status == 201


def test_nul_in_body_is_400(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    assert post(alice, room, "a\x00b").status == 400


@pytest.mark.parametrize("client_msg_id", ["", "x" * 129])
def test_bad_client_msg_id_is_400(make_agent, make_room, client_msg_id):
    alice = make_agent()
    room = make_room(alice)
    resp = post(alice, room, "hi", client_msg_id)
    assert resp.status == 400
    assert "clientMsgId" in resp.body["error"]["details"]


def test_repeated_client_msg_id_returns_the_stored_message(make_agent, make_room, table_counts):
    alice = make_agent()
    room = make_room(alice)
    first = post(alice, room, "once", "c-1")
    assert first.status == 201
    assert first.body["clientMsgId"] == "c-1"
    before = table_counts()
    again = post(alice, room, "once", "c-1")
    assert again.status == 200
    assert again.body == first.body
    # Even with another body: the retry returns what was stored.
    assert post(alice, room, "changed", "c-1").body == first.body
    assert table_counts() == before
    assert post(alice, room, "next", "c-2").body["seq"] == 2


def test_client_msg_id_is_per_sender(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    a = post(alice, room, "a", "same")
    b = post(bob, room, "b", "same")
    assert a.status == b.status == 201
    assert a.body["id"] != b.body["id"]


def test_client_msg_id_reused_in_another_room_is_409(make_agent, make_room, table_counts):
    alice = make_agent()
    r1, r2 = make_room(alice), make_room(alice)
    assert post(alice, r1, "a", "dup").status == 201
    before = table_counts()
    resp = post(alice, r2, "a", "dup")
    assert resp.status == 409
    assert table_counts() == before


def test_concurrent_retries_store_exactly_one(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    post(alice, room, "before")
    threads = 12
    barrier = threading.Barrier(threads)

    def send(_: int):
        barrier.wait()
        return post(alice, room, "racing", "race-1")

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(send, range(threads)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200] * (threads - 1) + [201], [r.text for r in results]
    assert len({r.body["id"] for r in results}) == 1
    assert {r.body["seq"] for r in results} == {2}
    count = sql(
        "SELECT count(*) FROM messages WHERE sender_id = %s AND client_msg_id = 'race-1'",
        alice.id,
    )
    assert count[0][0] == 1
    # The losers' rolled-back seq bumps left no gap.
    assert post(alice, room, "after").body["seq"] == 3
    assert stored_seqs(sql, room) == [1, 2, 3]


def test_concurrent_posts_get_seq_one_to_n(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    writers, per_writer = 10, 8
    barrier = threading.Barrier(writers)

    def writer(w: int) -> list[int]:
        barrier.wait()
        seqs = []
        for i in range(per_writer):
            resp = post(alice, room, f"w{w}-{i}")
            assert resp.status == 201, resp.text
            seqs.append(resp.body["seq"])
        return seqs

    with ThreadPoolExecutor(writers) as pool:
        acked = [s for seqs in pool.map(writer, range(writers)) for s in seqs]
    n = writers * per_writer
    assert sorted(acked) == list(range(1, n + 1))
    assert stored_seqs(sql, room) == list(range(1, n + 1))
    # Each writer's own messages are in the order it sent them.
    rows = sql("SELECT body, seq FROM messages WHERE room_id = %s ORDER BY seq", room["id"])
    for w in range(writers):
        mine = [str(body) for body, _ in rows if str(body).startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(per_writer)]


def _fill(agent: AgentCtx, room: Any, n: int) -> None:
    for i in range(n):
        assert post(agent, room, f"m{i + 1}").status == 201


def test_newest_first_pages_with_cursor(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 11)
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        resp = page(alice, room, **params)
        assert resp.status == 200, resp.text
        seen += [m["seq"] for m in resp.body["messages"]]
        cursor = resp.body["nextCursor"]
        pages += 1
        assert resp.body["hasMore"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == list(range(11, 0, -1))
    assert pages == 3


def test_default_page_is_newest_first_and_complete(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 3)
    resp = page(alice, room)
    assert [m["body"] for m in resp.body["messages"]] == ["m3", "m2", "m1"]
    assert resp.body["nextCursor"] is None


def test_exact_page_size_has_no_next_cursor(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 4)
    resp = page(alice, room, limit=4)
    assert len(resp.body["messages"]) == 4
    assert resp.body["nextCursor"] is None


def test_empty_room(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    assert page(alice, room).body == {"messages": [], "nextCursor": None, "hasMore": False}
    assert page(alice, room, after=0).body["messages"] == []


def test_after_is_oldest_first_catch_up(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 9)
    resp = page(alice, room, after=4, limit=3)
    assert [m["seq"] for m in resp.body["messages"]] == [5, 6, 7]
    assert resp.body["hasMore"] is True
    resp = page(alice, room, after=7, limit=3)
    assert [m["seq"] for m in resp.body["messages"]] == [8, 9]
    assert resp.body["hasMore"] is False
    assert page(alice, room, after=9).body["messages"] == []
    assert page(alice, room, after=10**6).body["messages"] == []


def test_paging_while_others_insert_neither_skips_nor_repeats(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 30)
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            resp = post(alice, room, "concurrent")
            if resp.status != 201:
                errors.append(resp.text)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        # Newest first, by cursor, while rows land above us.
        newest: list[int] = []
        cursor = None
        while True:
            params: dict[str, object] = {"limit": 4}
            if cursor:
                params["cursor"] = cursor
            resp = page(alice, room, **params)
            assert resp.status == 200, resp.text
            newest += [m["seq"] for m in resp.body["messages"]]
            cursor = resp.body["nextCursor"]
            if cursor is None:
                break
        # Oldest first, by ?after=, chasing the writers.
        caught_up: list[int] = []
        last = 0
        for _ in range(15):
            resp = page(alice, room, after=last, limit=5)
            assert resp.status == 200, resp.text
            batch = [m["seq"] for m in resp.body["messages"]]
            caught_up += batch
            if batch:
                last = batch[-1]
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    top = newest[0]
    assert top >= 30
    assert newest == list(range(top, 0, -1))
    # Drain the rest once the writers have stopped: every message, in order, once.
    while True:
        batch = [m["seq"] for m in page(alice, room, after=last, limit=50).body["messages"]]
        if not batch:
            break
        caught_up += batch
        last = batch[-1]
    total = stored_seqs(sql, room)
    assert len(total) > 30
    assert caught_up == total == list(range(1, len(total) + 1))


@pytest.mark.parametrize("limit", ["0", "201", "-1", "abc", "1.5", "99999999999999999999"])
def test_limit_out_of_bounds_is_400(make_agent, make_room, limit):
    alice = make_agent()
    room = make_room(alice)
    resp = page(alice, room, limit=limit)
    assert resp.status == 400
    assert "limit" in resp.body["error"]["details"]


@pytest.mark.parametrize("limit", [1, 200])
def test_limit_bounds_are_inclusive(make_agent, make_room, limit):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 2)
    resp = page(alice, room, limit=limit)
    assert resp.status == 200
    assert len(resp.body["messages"]) == min(limit, 2)


def test_bad_cursors_are_400(make_agent, make_room):
    alice = make_agent()
    room, other = make_room(alice), make_room(alice)
    _fill(alice, room, 3)
    foreign = cursors.encode("messages", other["id"], 2)
    audit_cursor = cursors.encode("audit", room["id"], 2)
    for cursor in ["garbage", "x" * 600, foreign, audit_cursor]:
        resp = page(alice, room, cursor=cursor)
        assert resp.status == 400, cursor
        assert resp.error_code() == "validation_failed"


def test_cursor_and_after_together_is_400(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    _fill(alice, room, 3)
    cursor = page(alice, room, limit=1).body["nextCursor"]
    assert page(alice, room, cursor=cursor, after=1).status == 400


@pytest.mark.parametrize("after", ["-1", "x", "1e3"])
def test_bad_after_is_400(make_agent, make_room, after):
    alice = make_agent()
    room = make_room(alice)
    assert page(alice, room, after=after).status == 400
