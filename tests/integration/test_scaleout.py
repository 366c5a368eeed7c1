"""Several `agenthub serve` processes sharing one Redis (REDIS_URL) and one PostgreSQL: every
socket hears what any process stored, in each room's seq order; long polls, revocations and
/readyz work across them. Each test's processes use their own channel prefix in the shared
Redis, so parallel runs and other users of that Redis do not cross."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.realtime_support import Socket, blocking, ok, run
from tests.servers import ScratchDatabase, Server, start_server, stop_server

SHARED_REDIS = os.environ.get("AGENTHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_answers(url: str) -> bool:
    host_port = url.split("//", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port or 6379)), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _require_redis() -> None:
    if not _redis_answers(SHARED_REDIS):
        if os.environ.get("AGENTHUB_REQUIRE_REDIS") == "1":
            pytest.fail(f"AGENTHUB_REQUIRE_REDIS=1 but no Redis answers at {SHARED_REDIS}")
        pytest.skip(f"no Redis at {SHARED_REDIS} (.ci/run starts one)")


@contextlib.contextmanager
def cluster(
    database: ScratchDatabase,
    log_dir: Path,
    count: int,
    redis_url: str = SHARED_REDIS,
    **extra: str,
) -> Iterator[list[Server]]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    servers: list[Server] = []
    try:
        for i in range(count):
            env = dict(
                database.env,
                REDIS_URL=redis_url,
                REDIS_PREFIX=prefix,
                SOCKET_EVENTS_PER_SECOND="10000",  # the order test sends as fast as it can
                SOCKET_BURST="10000",
                **extra,
            )
            servers.append(start_server(env, log_dir / f"agenthub-{i}.log"))
        yield servers
    finally:
        for srv in servers:
            code = stop_server(srv)
            assert code == 0, f"server exited with {code}:\n{srv.log_text()[-3000:]}"


@pytest.fixture(scope="module")
def three(
    database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[Server]]:
    _require_redis()
    with cluster(database, tmp_path_factory.mktemp("scaleout"), 3) as servers:
        yield servers


def _add(owner, room: dict[str, object], *agents) -> None:
    for agent in agents:
        resp = owner.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": agent.id})
        assert resp.status == 201, resp.text


def _heard(sock: Socket, room_id: str, count: int) -> bool:
    return len(sock.bodies(room_id)) >= count


def _api(srv: Server, agent):
    return srv.api(agent.jwt)


def test_readyz_reports_redis(three):
    for srv in three:
        resp = srv.api().get("/readyz")
        assert resp.status == 200, resp.text
        assert resp.body["checks"] == {"db": "ok", "redis": "ok"}


def test_events_posted_on_one_process_reach_sockets_on_the_others(three, make_agent, make_room):
    a, b, c = three
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    _add(alice, room, bob, carol)

    async def scenario() -> None:
        on_b, on_c, alice_c = Socket(b.base_url), Socket(c.base_url), Socket(c.base_url)
        for sock in (on_b, on_c, alice_c):
            for name in ("mention:new", "read:update", "room:updated"):
                sock.client.on(name, sock._recorder(name), namespace="/agents")
        try:
            await on_b.connect(bob.jwt)
            await on_c.connect(carol.jwt)
            await alice_c.connect(alice.jwt)
            posted = await blocking(
                _api(a, alice).post,
                f"/api/v1/rooms/{room['id']}/messages",
                {"body": f"hello @{carol.name}"},
            )
            assert posted.status == 201, posted.text
            for sock in (on_b, on_c, alice_c):
                got = await sock.wait_for("message:new", lambda m: m["id"] == posted.body["id"])
                assert got == posted.body
            # The mention reaches carol's socket on C (C's own table of who is where).
            mention = await on_c.wait_for("mention:new")
            assert mention["message"]["id"] == posted.body["id"]
            assert on_b.events["mention:new"] == []
            # A read marker moved on A reaches the agent's socket on C.
            marked = await blocking(
                _api(a, alice).put, f"/api/v1/rooms/{room['id']}/read", {"seq": 1}
            )
            assert marked.status in (200, 204), marked.text
            update = await alice_c.wait_for("read:update")
            assert update == {"roomId": room["id"], "lastReadSeq": 1}
            # A room change made on B reaches members' sockets on C.
            changed = await blocking(
                _api(b, alice).patch, f"/api/v1/rooms/{room['id']}", {"topic": "moved"}
            )
            assert changed.status == 200, changed.text
            updated = await on_c.wait_for("room:updated")
            assert updated["topic"] == "moved"
        finally:
            for sock in (on_b, on_c, alice_c):
                await sock.close()

    run(scenario())


def test_seq_order_holds_when_posts_alternate_between_processes(three, make_agent, make_room):
    """Posts race on A (REST) and B (socket); a socket on each process hears every message
    once, in seq order."""
    a, b, _ = three
    alice, bob, watcher = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    _add(alice, room, bob, watcher)
    per_sender = 40

    async def scenario() -> None:
        receivers = [Socket(srv.base_url) for srv in three]
        sender = Socket(b.base_url)
        try:
            for sock in receivers:
                await sock.connect(watcher.jwt)
            await sender.connect(bob.jwt)

            async def via_rest() -> None:
                api = _api(a, alice)
                for i in range(per_sender):
                    resp = await blocking(
                        api.post, f"/api/v1/rooms/{room['id']}/messages", {"body": f"rest {i}"}
                    )
                    assert resp.status == 201, resp.text

            async def via_socket() -> None:
                for i in range(per_sender):
                    ok(await sender.call("message:send", {"roomId": room["id"], "body": f"ws {i}"}))

            await asyncio.gather(via_rest(), via_socket())
            total = 2 * per_sender
            for sock in receivers:
                await sock.wait_until(functools.partial(_heard, sock, str(room["id"]), total))
                seqs = [m["seq"] for m in sock.events["message:new"] if m["roomId"] == room["id"]]
                assert seqs == list(range(1, total + 1))
        finally:
            for sock in [*receivers, sender]:
                await sock.close()

    run(scenario())


def test_long_poll_on_one_process_wakes_for_a_post_on_another(three, make_agent, make_room):
    a, b, _ = three
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _add(alice, room, bob)

    async def scenario() -> None:
        started = time.monotonic()
        waiting = asyncio.ensure_future(
            blocking(
                _api(a, bob).get,
                f"/api/v1/rooms/{room['id']}/messages",
                params={"after": 0, "wait": 30},
            )
        )
        inbox = asyncio.ensure_future(
            blocking(_api(a, bob).get, "/api/v1/inbox", params={"wait": 30})
        )
        await asyncio.sleep(1.0)  # both registered on A
        posted = await blocking(
            _api(b, alice).post, f"/api/v1/rooms/{room['id']}/messages", {"body": "wake up"}
        )
        assert posted.status == 201
        listed = await waiting
        assert listed.status == 200
        assert [m["id"] for m in listed.body["messages"]] == [posted.body["id"]]
        answered = await inbox
        assert answered.status == 200
        assert answered.body["rooms"] and room["id"] in answered.text, answered.body
        # Woken by the post, long before the 30 s deadline.
        assert time.monotonic() - started < 25

    run(scenario())


def test_revoking_a_token_on_one_process_ends_its_sockets_on_the_others(three, make_agent):
    a, b, c = three
    bob = make_agent()

    async def scenario() -> None:
        socks = [Socket(b.base_url), Socket(c.base_url)]
        try:
            for sock in socks:
                await sock.connect(bob.jwt)
            # Revoked through A with the agent's own JWT: bob's sockets live on B and C.
            prefix = bob.api_token.split("_")[1]
            resp = await blocking(_api(a, bob).delete, f"/api/v1/tokens/{prefix}")
            assert resp.status == 204, resp.text
            for sock in socks:
                await sock.wait_for("session:revoked")
                await sock.wait_disconnected()
        finally:
            for sock in socks:
                await sock.close()

    run(scenario())


def test_disabling_an_agent_on_one_process_ends_its_sockets_on_the_others(three, admin, make_agent):
    a, b, c = three
    carol = make_agent()

    async def scenario() -> None:
        socks = [Socket(b.base_url), Socket(c.base_url)]
        try:
            for sock in socks:
                await sock.connect(carol.jwt)
            resp = await blocking(
                a.api(admin.jwt).patch, f"/api/v1/agents/{carol.id}", {"disabled": True}
            )
            assert resp.status == 200, resp.text
            for sock in socks:
                revoked = await sock.wait_for("session:revoked")
                assert revoked["code"] == "unauthorized"
                await sock.wait_disconnected()
        finally:
            for sock in socks:
                await sock.close()

    run(scenario())


# --- Redis going away ------------------------------------------------------------------------


@contextlib.contextmanager
def own_redis(tmp: Path) -> Iterator[tuple[str, int, subprocess.Popen[bytes]]]:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("AGENTHUB_REQUIRE_REDIS") == "1":
            pytest.fail("AGENTHUB_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    proc = start_redis(binary, port, tmp)
    try:
        yield binary, port, proc
    finally:
        proc.kill()
        proc.wait()


def start_redis(binary: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not _redis_answers(f"redis://127.0.0.1:{port}/0"):
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    return proc


def _redis_check(srv: Server) -> str:
    resp = srv.api().get("/readyz")
    assert resp.status == 200, resp.text  # degraded, never down, for Redis
    return str(resp.body["checks"]["redis"])


def _lost_total(srv: Server) -> float:
    text = srv.api().get("/metrics").text
    for line in text.splitlines():
        if line.startswith("agenthub_redis_connection_lost_total "):
            return float(line.split()[1])
    raise AssertionError("agenthub_redis_connection_lost_total missing")


def test_redis_restart_posts_still_commit_and_delivery_resumes(
    database, tmp_path, make_agent, make_room
):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    _add(alice, room, bob)
    with own_redis(tmp_path) as (binary, port, proc):
        url = f"redis://127.0.0.1:{port}/0"
        # A short presence timeout: the heartbeat that restores presence comes every 2 s.
        with cluster(database, tmp_path, 2, url, PRESENCE_TIMEOUT_SECONDS="6") as (a, b):

            async def scenario() -> None:
                nonlocal proc
                on_b = Socket(b.base_url)
                try:
                    await on_b.connect(bob.jwt)
                    post = _api(a, alice).post
                    path = f"/api/v1/rooms/{room['id']}/messages"
                    first = await blocking(post, path, {"body": "before"})
                    await on_b.wait_for("message:new", lambda m: m["id"] == first.body["id"])

                    proc.kill()
                    proc.wait()
                    deadline = time.monotonic() + 15
                    while await blocking(_redis_check, a) != "unavailable":
                        assert time.monotonic() < deadline
                        await asyncio.sleep(0.1)
                    # PostgreSQL is the truth: the post commits and is answered.
                    during = await blocking(post, path, {"body": "during"})
                    assert during.status == 201, during.text
                    assert await blocking(_lost_total, a) >= 1

                    proc = start_redis(binary, port, tmp_path)
                    for srv in (a, b):
                        deadline = time.monotonic() + 15
                        while await blocking(_redis_check, srv) != "ok":
                            assert time.monotonic() < deadline
                            await asyncio.sleep(0.1)
                    after = await blocking(post, path, {"body": "after"})
                    assert after.status == 201
                    got = await on_b.wait_for("message:new", lambda m: m["id"] == after.body["id"])
                    assert got["seq"] == 3
                    # What B's socket missed live it gets by seq, as after any gap.
                    synced = ok(await on_b.call("room:sync", {"roomId": room["id"], "afterSeq": 1}))
                    assert [m["body"] for m in synced["messages"]] == ["during", "after"]
                    # Redis came back empty; B put bob's presence back: A's listing sees it.
                    deadline = time.monotonic() + 15
                    while not await blocking(_online_in_listing, a, alice, room["id"], bob.id):
                        assert time.monotonic() < deadline, "presence not restored"
                        await asyncio.sleep(0.2)
                finally:
                    await on_b.close()

            run(scenario())
        proc.kill()


# --- presence --------------------------------------------------------------------------------


def _presence(sock: Socket, agent_id: str, status: str) -> bool:
    return any(
        p["agentId"] == agent_id and p["status"] == status for p in sock.events["presence:update"]
    )


def _online_in_listing(srv: Server, viewer, room_id: str, agent_id: str) -> bool:
    resp = srv.api(viewer.jwt).get(f"/api/v1/rooms/{room_id}/members")
    assert resp.status == 200, resp.text
    return any(m["agentId"] == agent_id and m["online"] for m in resp.body["members"])


def test_an_agent_is_online_while_any_of_its_sockets_on_any_process_is(
    three, make_agent, make_room
):
    a, b, c = three
    alice, watcher = make_agent(), make_agent()
    room = make_room(watcher)
    _add(watcher, room, alice)

    async def scenario() -> None:
        seen = Socket(c.base_url)
        on_a, on_b = Socket(a.base_url), Socket(b.base_url)
        try:
            await seen.connect(watcher.jwt)
            await on_a.connect(alice.jwt)
            await seen.wait_until(lambda: _presence(seen, alice.id, "online"))
            await on_b.connect(alice.jwt)
            assert await blocking(_online_in_listing, c, watcher, room["id"], alice.id)
            await on_a.close()
            # Still on B: no offline, and C's listing says online.
            await asyncio.sleep(1.0)
            assert not _presence(seen, alice.id, "offline")
            assert await blocking(_online_in_listing, c, watcher, room["id"], alice.id)
            await on_b.close()
            await seen.wait_until(lambda: _presence(seen, alice.id, "offline"))
            assert not await blocking(_online_in_listing, c, watcher, room["id"], alice.id)
            online = [p for p in seen.events["presence:update"] if p["agentId"] == alice.id]
            assert [p["status"] for p in online] == ["online", "offline"]
        finally:
            for sock in (seen, on_a, on_b):
                await sock.close()

    run(scenario())


def test_a_killed_process_leaves_no_ghost_presence(database, tmp_path, make_agent, make_room):
    _require_redis()
    alice, watcher = make_agent(), make_agent()
    room = make_room(watcher)
    _add(watcher, room, alice)
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    # A short heartbeat window keeps the test short; the mechanism is the 30 s one's.
    env = dict(
        database.env, REDIS_URL=SHARED_REDIS, REDIS_PREFIX=prefix, PRESENCE_TIMEOUT_SECONDS="6"
    )
    doomed = start_server(env, tmp_path / "doomed.log")
    survivor = start_server(env, tmp_path / "survivor.log")
    try:

        async def scenario() -> None:
            seen, ghost = Socket(survivor.base_url), Socket(doomed.base_url)
            try:
                await seen.connect(watcher.jwt)
                await ghost.connect(alice.jwt)
                await seen.wait_until(lambda: _presence(seen, alice.id, "online"))
                doomed.process.kill()  # no goodbye: the socket is never closed cleanly
                doomed.process.wait()
                started = time.monotonic()
                await seen.wait_until(lambda: _presence(seen, alice.id, "offline"), within=30)
                # Within the window (6 s TTL, swept every 2 s), with room for a slow box.
                assert time.monotonic() - started < 20
                assert not await blocking(
                    _online_in_listing, survivor, watcher, room["id"], alice.id
                )
            finally:
                await seen.close()
                await ghost.close()

        run(scenario())
    finally:
        if doomed.process.poll() is None:
            doomed.process.kill()
        assert stop_server(survivor) == 0
