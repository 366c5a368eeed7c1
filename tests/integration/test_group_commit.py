"""Group commit (agenthub.group_commit, MessageService._insert_batch): posts into one room that
arrive while a write is in flight are stored by one statement. Per room the seqs stay dense and
in commit order, each post's answer is its own row, idempotency holds inside a batch, and a post
refused for its own reason fails alone.

The in-process tests drive MessageService on the test database: ``asyncio.gather`` submits
every post before the first write starts, so they form one batch (the first write takes all of
them, up to its bound). The HTTP tests race real clients through the server."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agenthub.actors import Principal
from agenthub.config import load_settings
from agenthub.errors import AppError, Forbidden, ValidationFailed
from agenthub.events import Event, MessagePosted
from agenthub.group_commit import GroupCommit
from agenthub.services.messages import PostResult
from agenthub.services.registry import Services, build_services
from agenthub.store.db import Database
from tests.servers import AgentCtx


def principal(agent: AgentCtx) -> Principal:
    return Principal(uuid.UUID(agent.id), agent.name, agent.role, "testpfx")


def run_services(database: Any, work: Callable[[Services], Awaitable[Any]]) -> Any:
    """Run ``work`` on the services of one in-process hub (the server's database)."""

    async def main() -> Any:
        settings = load_settings(database.env)
        db = Database(
            settings.dsn(), audited=audited.append, observe=lambda op, _: queries.append(op)
        )
        await db.start()
        services = build_services(settings, db)
        services.bus.subscribe(published_events)
        try:
            result = await work(services)
            await services.bus.settle()
            return result
        finally:
            await services.close()

    audited: list[str] = []
    queries: list[str] = []  # the first word of each statement run
    published: list[Event] = []

    async def published_events(event: Event) -> None:
        published.append(event)

    result = asyncio.run(main())
    return result, published, audited, queries


def join(agent: AgentCtx, room: Any) -> None:
    assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201


def seqs_and_bodies(sql: Any, room: Any) -> list[tuple[int, str]]:
    rows = sql("SELECT seq, body FROM messages WHERE room_id = %s ORDER BY seq", room["id"])
    return [(int(str(seq)), str(body)) for seq, body in rows]


async def gather_posts(
    services: Services, room_id: uuid.UUID, posts: list[tuple[AgentCtx, dict[str, Any]]]
) -> list[PostResult | AppError]:
    async def one(agent: AgentCtx, fields: dict[str, Any]) -> PostResult | AppError:
        try:
            return await services.messages.post_message(principal(agent), room_id, **fields)
        except AppError as exc:
            return exc

    return list(await asyncio.gather(*(one(agent, fields) for agent, fields in posts)))


def test_a_batch_gets_dense_seqs_in_arrival_order_and_each_post_its_own_row(
    database, make_agent, make_room, sql
):
    owner = make_agent()
    room = make_room(owner)
    agents = [owner, *(make_agent() for _ in range(4))]
    for agent in agents[1:]:
        join(agent, room)
    posts = [(agents[i % 5], {"body": f"post {i}"}) for i in range(20)]

    results, published, audited, queries = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert all(isinstance(r, PostResult) and r.created for r in results)
    # One statement stored them all (no other write ran), numbering them as they came.
    assert queries == ["with"]
    assert [r.message.seq for r in results] == list(range(1, 21))
    for (agent, fields), r in zip(posts, results, strict=True):
        assert r.message.body == fields["body"]
        assert str(r.message.sender_id) == agent.id
    assert seqs_and_bodies(sql, room) == [(i + 1, f"post {i}") for i in range(20)]
    # Published in seq order, each once; one audit row (and count) per stored message.
    assert [e.message.seq for e in published if isinstance(e, MessagePosted)] == list(range(1, 21))
    assert audited.count("message-sent") == 20
    count = sql(
        "SELECT count(*) FROM audit_events WHERE type = 'message-sent' AND payload->>'roomId' = %s",
        room["id"],
    )
    assert count[0][0] == 20
    assert owner.api.get(f"/api/v1/rooms/{room['id']}").body["lastSeq"] == 20


def test_refused_posts_in_a_batch_fail_alone(database, make_agent, make_room, sql):
    owner = make_agent()
    room = make_room(owner)
    outsider = make_agent()
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (owner, {"body": "first"}),
        (outsider, {"body": "not a member"}),
        (owner, {"body": "second"}),
        (owner, {"body": "reply to nothing", "reply_to": 99}),
        (owner, {"body": "third"}),
        (owner, {"body": "nul \x00 in body"}),
        (owner, {"body": "fourth"}),
    ]

    results, published, audited, _ = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert isinstance(results[1], Forbidden)
    assert isinstance(results[3], ValidationFailed)
    assert "replyTo" in results[3].details
    assert isinstance(results[5], ValidationFailed)
    stored = [r for r in results if isinstance(r, PostResult)]
    assert [r.message.body for r in stored] == ["first", "second", "third", "fourth"]
    assert [r.message.seq for r in stored] == [1, 2, 3, 4]
    assert seqs_and_bodies(sql, room) == [(1, "first"), (2, "second"), (3, "third"), (4, "fourth")]
    assert audited.count("message-sent") == 4
    assert [e.message.seq for e in published if isinstance(e, MessagePosted)] == [1, 2, 3, 4]


def test_an_archived_room_refuses_the_whole_batch(database, make_agent, make_room, sql):
    owner = make_agent()
    room = make_room(owner)
    assert owner.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "kept"}).status == 201
    archived = owner.api.post(f"/api/v1/rooms/{room['id']}/archive")
    assert archived.status == 200, archived.text
    posts = [(owner, {"body": f"late {i}"}) for i in range(5)]

    results, published, _, _ = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert all(isinstance(r, AppError) and r.code == "room_archived" for r in results), results
    assert seqs_and_bodies(sql, room) == [(1, "kept")]
    assert published == []


def test_one_client_msg_id_twice_in_a_batch_stores_one_row(database, make_agent, make_room, sql):
    alice = make_agent()
    bob = make_agent()
    room = make_room(alice)
    join(bob, room)
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (alice, {"body": "a", "client_msg_id": "same"}),
        (bob, {"body": "b", "client_msg_id": "same"}),  # another sender: its own message
        (alice, {"body": "a again", "client_msg_id": "same"}),
        (alice, {"body": "other", "client_msg_id": "other"}),
        (alice, {"body": "a thrice", "client_msg_id": "same"}),
    ]

    results, published, audited, _ = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert all(isinstance(r, PostResult) for r in results), results
    assert [r.created for r in results] == [True, True, False, True, False]
    first = results[0].message
    assert results[2].message.id == first.id and results[4].message.id == first.id
    assert first.body == "a"
    assert seqs_and_bodies(sql, room) == [(1, "a"), (2, "b"), (3, "other")]
    assert audited.count("message-sent") == 3
    assert [e.message.seq for e in published if isinstance(e, MessagePosted)] == [1, 2, 3]


def test_a_reply_to_a_message_of_the_same_batch_is_stored_after_it(
    database, make_agent, make_room, sql
):
    alice = make_agent()
    room = make_room(alice)
    # seq 1 and 2 go in the batch; the reply names seq 1, which this batch is about to store.
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (alice, {"body": "root"}),
        (alice, {"body": "between"}),
        (alice, {"body": "reply", "reply_to": 1}),
        (alice, {"body": "reply to an older reply", "reply_to": 3}),
        (alice, {"body": "after"}),
    ]

    results, published, _, _ = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert all(isinstance(r, PostResult) and r.created for r in results), results
    by_body = {r.message.body: r.message for r in results}
    reply = by_body["reply"]
    assert (reply.reply_to, reply.thread_root) == (1, 1)
    assert reply.seq > 1
    assert by_body["root"].seq == 1
    # seq 3 was "after" or the reply: each a message of the room by the time it was needed.
    deeper = by_body["reply to an older reply"]
    assert deeper.reply_to == 3
    third = next(r.message for r in results if r.message.seq == 3)
    assert deeper.thread_root == (third.thread_root or 3)
    assert sorted(r.message.seq for r in results) == [1, 2, 3, 4, 5]
    assert [seq for seq, _ in seqs_and_bodies(sql, room)] == [1, 2, 3, 4, 5]
    assert [e.message.seq for e in published if isinstance(e, MessagePosted)] == [1, 2, 3, 4, 5]


def test_mentions_in_a_batch_belong_to_their_own_post(database, make_agent, make_room, sql):
    alice = make_agent()
    bob = make_agent()
    carol = make_agent()
    stranger = make_agent()  # not a member: stays plain text
    room = make_room(alice)
    join(bob, room)
    join(carol, room)
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (alice, {"body": f"hi @{bob.name}"}),
        (bob, {"body": "no mention"}),
        (carol, {"body": f"@{alice.name} and @{bob.name} and @{stranger.name}"}),
        (alice, {"body": "@room everyone"}),
        (bob, {"body": f"@{bob.name} myself"}),
    ]

    results, _, _, _ = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert all(isinstance(r, PostResult) for r in results), results
    mentions = [sorted(str(m) for m in r.message.mentions) for r in results]
    assert mentions == [
        [bob.id],
        [],
        sorted([alice.id, bob.id]),
        [],
        [bob.id],
    ]
    assert [r.message.mentions_room for r in results] == [False, False, False, True, False]
    rows = sql(
        "SELECT seq, agent_id FROM mentions WHERE room_id = %s ORDER BY seq, agent_id", room["id"]
    )
    expected = sorted(
        [(1, bob.id), (3, alice.id), (3, bob.id), (4, bob.id), (4, carol.id)],
        key=lambda row: (row[0], str(row[1])),
    )
    assert [(int(str(seq)), str(agent)) for seq, agent in rows] == expected


def test_concurrent_posts_from_many_agents_get_dense_seqs_matching_their_rows(
    make_agent, make_room, sql
):
    owner = make_agent()
    room = make_room(owner)
    agents = [owner, *(make_agent() for _ in range(11))]
    for agent in agents[1:]:
        join(agent, room)
    per_agent = 10
    barrier = threading.Barrier(len(agents))

    def writer(agent: AgentCtx) -> list[tuple[int, str, str]]:
        barrier.wait()
        acked = []
        for i in range(per_agent):
            resp = agent.api.post(
                f"/api/v1/rooms/{room['id']}/messages",
                {"body": f"{agent.name} {i}", "clientMsgId": f"m{i}"},
            )
            assert resp.status == 201, resp.text
            acked.append((resp.body["seq"], resp.body["id"], resp.body["body"]))
        return acked

    with ThreadPoolExecutor(len(agents)) as pool:
        acked = [a for acks in pool.map(writer, agents) for a in acks]
    n = len(agents) * per_agent
    assert sorted(seq for seq, _, _ in acked) == list(range(1, n + 1))
    rows = sql("SELECT seq, id, body FROM messages WHERE room_id = %s ORDER BY seq", room["id"])
    assert sorted(acked) == [(int(str(s)), str(i), str(b)) for s, i, b in rows]


def test_the_same_client_msg_id_raced_by_many_requests_stores_one_row(make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    others = [make_agent() for _ in range(5)]
    for agent in others:
        join(agent, room)
    threads = 16
    barrier = threading.Barrier(threads)

    def send(i: int) -> Any:
        barrier.wait()
        if i % 3 == 0:  # other agents' posts fill the same batches
            agent = others[i % 5]
            return agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": f"noise {i}"})
        return alice.api.post(
            f"/api/v1/rooms/{room['id']}/messages", {"body": "racing", "clientMsgId": "dup"}
        )

    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(send, range(threads)))
    mine = [r for i, r in enumerate(results) if i % 3]
    assert sorted(r.status for r in mine) == [200] * (len(mine) - 1) + [201]
    assert len({r.body["id"] for r in mine}) == 1
    assert all(r.status == 201 for i, r in enumerate(results) if i % 3 == 0)
    count = sql(
        "SELECT count(*) FROM messages WHERE sender_id = %s AND client_msg_id = 'dup'", alice.id
    )
    assert count[0][0] == 1
    seqs = [seq for seq, _ in seqs_and_bodies(sql, room)]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) == 1 + sum(1 for i in range(threads) if i % 3 == 0)


def test_group_commit_bounds_a_batch_and_goes_at_once_when_idle() -> None:
    written: list[list[int]] = []

    async def write(key: str, items: Any) -> list[int]:
        written.append(list(items))
        await asyncio.sleep(0.01)
        return [item * 10 for item in items]

    async def main() -> list[int]:
        group: GroupCommit[str, int, int] = GroupCommit(write, max_batch=3)
        results = await asyncio.gather(*(group.submit("room", i) for i in range(8)))
        # Idle again: a lone item is written at once, alone.
        alone = await group.submit("room", 99)
        assert group.pending() == 0
        return [*results, alone]

    assert asyncio.run(main()) == [0, 10, 20, 30, 40, 50, 60, 70, 990]
    assert written == [[0, 1, 2], [3, 4, 5], [6, 7], [99]]


def test_group_commit_fails_only_the_batch_whose_write_failed() -> None:
    async def write(key: str, items: Any) -> list[int]:
        await asyncio.sleep(0)
        if 1 in items:
            raise RuntimeError("this batch")
        return list(items)

    async def main() -> list[Any]:
        group: GroupCommit[str, int, int] = GroupCommit(write, max_batch=2)
        return await asyncio.gather(
            *(group.submit("room", i) for i in range(4)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert [type(r) for r in results[:2]] == [RuntimeError, RuntimeError]
    assert results[2:] == [2, 3]


@pytest.mark.parametrize("max_batch", [0, -1])
def test_group_commit_needs_a_positive_bound(max_batch: int) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        GroupCommit(lambda key, items: asyncio.sleep(0, []), max_batch=max_batch)


def test_a_value_the_database_refuses_fails_only_its_own_post(database, make_agent, make_room, sql):
    alice = make_agent()
    room = make_room(alice)
    # Python's JSON allows NaN; PostgreSQL's jsonb does not: the whole statement fails, and
    # the batch is then written post by post.
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (alice, {"body": "first"}),
        (alice, {"body": "bad", "data": {"x": float("nan")}}),
        (alice, {"body": "second", "client_msg_id": "c2"}),
    ]

    async def work(services: Services) -> list[Any]:
        async def one(fields: dict[str, Any]) -> Any:
            try:
                return await services.messages.post_message(
                    principal(alice), uuid.UUID(room["id"]), **fields
                )
            except Exception as exc:
                return exc

        return list(await asyncio.gather(*(one(fields) for _, fields in posts)))

    results, published, audited, _ = run_services(database, work)

    assert isinstance(results[0], PostResult) and isinstance(results[2], PostResult)
    assert not isinstance(results[1], PostResult)
    assert [results[0].message.seq, results[2].message.seq] == [1, 2]
    assert seqs_and_bodies(sql, room) == [(1, "first"), (2, "second")]
    assert audited.count("message-sent") == 2
    assert [e.message.seq for e in published if isinstance(e, MessagePosted)] == [1, 2]


def test_one_client_msg_id_raced_into_two_rooms_fails_only_the_second_use(
    database, make_agent, make_room, sql
):
    alice = make_agent()
    bob = make_agent()
    first, second = make_room(alice), make_room(alice)
    join(bob, first)
    join(bob, second)
    # Two rooms, two batches written at the same time. When both statements pass "this
    # clientMsgId is new", the later one hits the unique constraint and wrote nothing: its
    # batch is then written post by post, so only the reused clientMsgId is refused.
    batches = {
        first["id"]: [
            (alice, {"body": "a1", "client_msg_id": "shared"}),
            (bob, {"body": "b1"}),
        ],
        second["id"]: [
            (bob, {"body": "b2"}),
            (alice, {"body": "a2", "client_msg_id": "shared"}),
            (alice, {"body": "a3"}),
        ],
    }

    async def work(services: Services) -> dict[str, list[PostResult | AppError]]:
        rooms = list(batches)
        results = await asyncio.gather(
            *(gather_posts(services, uuid.UUID(room), batches[room]) for room in rooms)
        )
        return dict(zip(rooms, results, strict=True))

    results, published, audited, _ = run_services(database, work)

    shared = [results[first["id"]][0], results[second["id"]][1]]
    stored = [r for r in shared if isinstance(r, PostResult)]
    refused = [r for r in shared if isinstance(r, AppError)]
    assert len(stored) == 1 and stored[0].created
    assert len(refused) == 1 and refused[0].status == 409 and "clientMsgId" in refused[0].details
    others = [results[first["id"]][1], results[second["id"]][0], results[second["id"]][2]]
    assert all(isinstance(r, PostResult) and r.created for r in others), others
    for room in (first, second):
        seqs = [seq for seq, _ in seqs_and_bodies(sql, room)]
        assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs_and_bodies(sql, first)) + len(seqs_and_bodies(sql, second)) == 4
    assert audited.count("message-sent") == 4
    assert sum(isinstance(e, MessagePosted) for e in published) == 4


def test_kinds_and_data_in_a_batch_belong_to_their_own_post(database, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    data = {"task": "review", "files": ["a.py", "é ✓"], "n": [1, 2.5, None, True], "o": {}}
    posts: list[tuple[AgentCtx, dict[str, Any]]] = [
        (alice, {"body": "plain"}),
        (alice, {"body": "", "kind": "task.review", "data": data}),
        (alice, {"body": "with data", "data": {"quote": 'a "b" \\ c'}}),
        (alice, {"body": "status", "kind": "status"}),
    ]

    results, _, _, queries = run_services(
        database, lambda s: gather_posts(s, uuid.UUID(room["id"]), posts)
    )

    assert queries == ["with"]
    assert all(isinstance(r, PostResult) for r in results), results
    assert [(r.message.kind, r.message.data) for r in results] == [
        ("text", None),
        ("task.review", data),
        ("text", {"quote": 'a "b" \\ c'}),
        ("status", None),
    ]
    listed = alice.api.get(f"/api/v1/rooms/{room['id']}/messages", params={"after": 0}).body
    assert [(m["kind"], m["data"]) for m in listed["messages"]] == [
        ("text", None),
        ("task.review", data),
        ("text", {"quote": 'a "b" \\ c'}),
        ("status", None),
    ]
