"""subscribe(): every message exactly once per (room, seq), in seq order, whatever happens to
the connection: the server SIGKILLed mid-stream and started again (on the same port and
database) while another agent keeps posting, a SIGTERM (drain, restart), and a session JWT
that expires on a live socket (renewed with session:refresh, or the socket ended by the server
and a new login made)."""

from __future__ import annotations

import asyncio
import signal
from collections import defaultdict

import pytest

from agenthub.client import AgentHub, AsyncAgentHub, Event, RetryPolicy, Subscription
from tests.faults.server import LOAD_SETTINGS, ServerProcess
from tests.realtime_support import run

# The poster rides out the restart: it retries each send (same clientMsgId) until it lands.
PATIENT = RetryPolicy(attempts=400, base_delay=0.05, max_delay=0.25)


@pytest.fixture
def own_server(database, tmp_path):
    srv = ServerProcess(dict(database.env, **LOAD_SETTINGS), tmp_path)
    srv.start()
    srv.wait_ready()
    yield srv
    srv.stop()


def _rooms_with(make_agent, make_room, count: int):
    alice, bob = make_agent(), make_agent()
    rooms = [make_room(bob) for _ in range(count)]
    for room in rooms:
        resp = bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": alice.id})
        assert resp.status == 201, resp.text
    return alice, bob, [str(r["id"]) for r in rooms]


async def _collect(sub, expected: dict[str, int], seen: dict[str, list[int]], others: list[Event]):
    """Read events until every room in ``expected`` has yielded its count of messages."""
    async for event in sub:
        if event.name == "message:new":
            assert event.message is not None and event.room_id == event.message.room_id
            seen[event.room_id].append(event.message.seq)
            if all(len(seen[r]) >= n for r, n in expected.items()):
                return
        else:
            others.append(event)


async def _restart(server: ServerProcess, sig: signal.Signals, down_for: float) -> None:
    server.send_signal(sig)
    code = await asyncio.to_thread(server.wait_exit, 30)
    assert code is not None, "the server did not exit"
    await asyncio.sleep(down_for)
    server.start()
    await asyncio.to_thread(server.wait_ready)


def _scenario(server: ServerProcess, alice, bob, rooms: list[str], sig: signal.Signals) -> None:
    per_room = 80

    async def scenario() -> None:
        async with (
            AsyncAgentHub(server.base_url, alice.api_token) as reader,
            AsyncAgentHub(server.base_url, bob.api_token, retry=PATIENT) as writer,
        ):
            sub = reader.subscribe()  # all of alice's rooms
            await sub.wait_connected(30)
            seen: dict[str, list[int]] = defaultdict(list)
            others: list[Event] = []
            collector = asyncio.create_task(
                _collect(sub, dict.fromkeys(rooms, per_room), seen, others)
            )

            posted = [0]
            progress = asyncio.Event()

            async def post(room: str) -> None:
                for i in range(per_room):
                    await writer.send(room, f"{room[:8]} #{i}")
                    posted[0] += 1
                    progress.set()
                    await asyncio.sleep(0.01)

            posters = [asyncio.create_task(post(r)) for r in rooms]
            # Stop the server twice while the stream flows and both posters still post (the
            # posts in flight when it stops are retried with their clientMsgId).
            total = per_room * len(rooms)
            for mark in (total // 3, 2 * total // 3):
                while posted[0] < mark:
                    progress.clear()
                    await progress.wait()
                await _restart(server, sig, down_for=0.5)
            await asyncio.gather(*posters)
            await asyncio.wait_for(collector, 60)
            await sub.aclose()

            for room in rooms:
                # every seq once, in order, no gap: and the room holds exactly those (the
                # retried sends stored nothing twice)
                assert seen[room] == list(range(1, per_room + 1)), seen[room]
                page = await writer.list_messages(room, after=0, limit=200)
                bodies = [m.body for m in page.messages]
                assert len(bodies) == per_room == len(set(bodies))
            assert sub.connections >= 2  # it did reconnect
            assert all(e.name == "presence:update" for e in others)

    run(scenario(), timeout=180)


def test_subscribe_survives_a_killed_server(own_server, make_agent, make_room):
    alice, bob, rooms = _rooms_with(make_agent, make_room, 2)
    _scenario(own_server, alice, bob, rooms, signal.SIGKILL)


def test_subscribe_survives_a_restart_by_sigterm(own_server, make_agent, make_room):
    alice, bob, rooms = _rooms_with(make_agent, make_room, 2)
    _scenario(own_server, alice, bob, rooms, signal.SIGTERM)


def test_subscribe_catches_up_from_given_positions_and_filters_rooms(server, make_agent, make_room):
    alice, bob, rooms = _rooms_with(make_agent, make_room, 2)
    wanted, ignored = rooms

    async def scenario() -> None:
        async with (
            AsyncAgentHub(server.base_url, alice.api_token) as reader,
            AsyncAgentHub(server.base_url, bob.api_token) as writer,
        ):
            for i in range(5):
                await writer.send(wanted, f"before {i}")
                await writer.send(ignored, f"elsewhere {i}")
            # resume after seq 2 of the wanted room, addressed by slug
            slug = (await reader.get_room(wanted)).slug
            sub = reader.subscribe([slug], after={slug: 2})
            seen: list[int] = []
            async for event in sub:
                if event.name == "message:new":
                    assert event.room_id == wanted and event.message is not None
                    seen.append(event.message.seq)
                    if len(seen) == 3:
                        await writer.send(ignored, "not for this subscription")
                        await writer.send(wanted, f"hello @{alice.name}")
                if event.name == "mention:new":
                    assert event.message is not None and event.message.seq == 6
                    assert event.data["room"] == {"id": wanted, "slug": slug}
                    break
            assert seen == [3, 4, 5, 6]
            assert sub.positions == {wanted: 6}
            await sub.aclose()

    run(scenario(), timeout=60)


def test_subscribe_yields_rooms_joined_later_and_redactions(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    later = make_room(bob)

    async def scenario() -> None:
        async with (
            AsyncAgentHub(server.base_url, alice.api_token) as reader,
            AsyncAgentHub(server.base_url, bob.api_token) as writer,
        ):
            sub = reader.subscribe()
            await sub.wait_connected(30)
            first = await writer.send(str(later["id"]), "before alice joined")
            await writer.add_member(str(later["id"]), alice.id)
            await writer.send(str(later["id"]), "after")
            await writer.redact(str(later["id"]), first.seq)
            names: list[tuple[str, int | None]] = []
            async for event in sub:
                if event.name == "message:new" and event.message is not None:
                    names.append((event.name, event.message.seq))
                elif event.name == "message:redacted":
                    names.append((event.name, event.data["seq"]))
                    break
            # the room's whole history, from seq 1, once; then the redaction of seq 1
            assert names == [("message:new", 1), ("message:new", 2), ("message:redacted", 1)]
            await sub.aclose()

    run(scenario(), timeout=60)


def test_an_expiring_session_is_renewed_on_the_live_socket_or_by_reconnecting(
    database, tmp_path, make_agent, make_room
):
    srv = ServerProcess(dict(database.env, JWT_TTL_SECONDS="30", **LOAD_SETTINGS), tmp_path)
    srv.start()
    srv.wait_ready()
    alice, bob, (room,) = _rooms_with(make_agent, make_room, 1)
    total = 40

    async def scenario() -> None:
        async with (
            AsyncAgentHub(srv.base_url, alice.api_token) as renewing,
            AsyncAgentHub(srv.base_url, alice.api_token) as expiring,
            AsyncAgentHub(srv.base_url, bob.api_token, retry=PATIENT) as writer,
        ):
            live = renewing.subscribe([room])
            lapsing = Subscription(expiring, [room], renew_live_session=False)
            await live.wait_connected(30)
            await lapsing.wait_connected(30)
            seen_live: dict[str, list[int]] = defaultdict(list)
            seen_lapsing: dict[str, list[int]] = defaultdict(list)
            tasks = [
                asyncio.create_task(_collect(live, {room: total}, seen_live, [])),
                asyncio.create_task(_collect(lapsing, {room: total}, seen_lapsing, [])),
            ]
            # 40 messages over ~40 s: past the 30 s JWT (renewed at 24 s).
            for i in range(total):
                await writer.send(room, f"tick {i}")
                await asyncio.sleep(1.0)
            await asyncio.wait_for(asyncio.gather(*tasks), 30)
            for sub in (live, lapsing):
                await sub.aclose()
            assert seen_live[room] == seen_lapsing[room] == list(range(1, total + 1))
            assert live.live_refreshes >= 1 and live.connections == 1
            assert lapsing.live_refreshes == 0 and lapsing.connections >= 2
            assert expiring.session.logins >= 2

    try:
        run(scenario(), timeout=150)
    finally:
        srv.stop()


def test_read_marks_from_elsewhere_arrive_as_read_update(server, make_agent, make_room):
    alice, bob, (room,) = _rooms_with(make_agent, make_room, 1)

    async def scenario() -> None:
        async with (
            AsyncAgentHub(server.base_url, alice.api_token) as reader,
            AsyncAgentHub(server.base_url, alice.api_token) as elsewhere,
            AsyncAgentHub(server.base_url, bob.api_token) as writer,
        ):
            sub = reader.subscribe()
            await sub.wait_connected(30)
            sent = await writer.send(room, "read me")
            await elsewhere.mark_read(room, sent.seq)
            async for event in sub:
                if event.name == "read:update":
                    assert event.room_id == room
                    assert event.data["lastReadSeq"] == sent.seq
                    break
            await sub.aclose()

    run(scenario(), timeout=60)


def test_blocking_subscribe(server, make_agent, make_room):
    alice, bob, (room,) = _rooms_with(make_agent, make_room, 1)
    a = AgentHub(server.base_url, alice.api_token)
    with AgentHub(server.base_url, bob.api_token) as b:
        sub = a.subscribe([room])
        sub.wait_connected(30)
        for i in range(3):
            b.send(room, f"n{i}")
        bodies = []
        while len(bodies) < 3:
            event = sub.next(timeout=10)
            if event.name == "message:new" and event.message is not None:
                bodies.append(event.message.body)
        assert bodies == ["n0", "n1", "n2"]
        while True:  # nothing more than presence news
            try:
                event = sub.next(timeout=0.5)
            except TimeoutError:
                break
            assert event.name == "presence:update"
        assert sub.positions == {room: 3}
    a.close()  # closes the subscription still open, then the loop
    with pytest.raises(StopAsyncIteration):  # the iteration has ended
        asyncio.run(sub.aio.__anext__())
