"""SIGTERM: the server stops taking work, finishes what is in flight (socket events and
REST requests) and gets its answers out, then closes sockets at the transport level. Both
client libraries treat that as a lost transport and reconnect by themselves, here to a new
server started on the same port. A message whose send was in flight is acknowledged before
the close, or (sent while draining) refused `unavailable` and stored by the retry: nothing
acknowledged is missing, nothing is stored twice."""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

from tests.integration.test_realtime_node import NODE, NODE_DIR
from tests.integration.test_realtime_node import pytestmark as node_mark
from tests.realtime_support import Socket, blocking, error_code, ok, run
from tests.servers import Server, login, start_server, stop_server

RECONNECT_WITHIN = 60.0  # generous: the client backs off while no server listens


def port_of(srv: Server) -> int:
    return int(urllib.parse.urlsplit(srv.base_url).port or 0)


@contextmanager
def two_servers(env: dict[str, str], tmp_path: Path) -> Iterator[list[Server]]:
    """The first server; the test appends the second (same port). Both stopped at the end;
    each must exit 0."""
    servers = [start_server(env, tmp_path / "first.log")]
    try:
        yield servers
    finally:
        for srv in servers:
            if srv.process.poll() is None:
                assert stop_server(srv) == 0, srv.log_text()[-3000:]
            assert srv.process.returncode == 0, srv.log_text()[-3000:]


def restart(servers: list[Server], tmp_path: Path) -> Server:
    """SIGTERM the running server, wait for it to exit, start the next on its port."""
    old = servers[-1]
    assert stop_server(old) == 0, old.log_text()[-3000:]
    new = start_server(old.env, tmp_path / f"server{len(servers)}.log", port=port_of(old))
    servers.append(new)
    return new


def test_python_client_reconnects_by_itself_after_sigterm(database, tmp_path, admin):
    with two_servers(database.env, tmp_path) as servers:
        jwt = login(servers[0], admin.api_token)
        room = servers[0].api(jwt).post("/api/v1/rooms", {"slug": f"term-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201

        async def scenario() -> None:
            sock = Socket(servers[0].base_url, reconnection=True)
            try:
                await sock.connect(jwt)
                await blocking(restart, servers, tmp_path)
                # "transport error": python-socketio's reason for a lost transport; a server
                # decision would be "server disconnect" (and no reconnection).
                assert await sock.wait_disconnected() == "transport error"
                await sock.wait_until(
                    lambda: len(sock.events["connected"]) == 2, within=RECONNECT_WITHIN
                )
                payload = {"roomId": room.body["id"], "body": "after the restart"}
                assert ok(await sock.call("message:send", payload))["message"]["seq"] == 1
            finally:
                await sock.close()

        run(scenario())
        assert "closing 1 socket(s)" in servers[0].log_text()


@node_mark
def test_node_client_reconnects_by_itself_after_sigterm(database, tmp_path, admin):
    assert NODE is not None
    with two_servers(database.env, tmp_path) as servers:
        jwt = login(servers[0], admin.api_token)
        room = servers[0].api(jwt).post("/api/v1/rooms", {"slug": f"term-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201
        config = {
            "url": servers[0].base_url,
            "token": jwt,
            "roomId": room.body["id"],
            "timeoutMs": RECONNECT_WITHIN * 1000,
        }
        node = subprocess.Popen(
            [NODE, str(NODE_DIR / "client.mjs"), "reconnect"],
            env={"AGENTHUB_NODE_TEST": json.dumps(config), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert node.stdout is not None
            assert json.loads(node.stdout.readline()) == {"ready": True}
            restart(servers, tmp_path)
            out, err = node.communicate(timeout=RECONNECT_WITHIN + 10)
        finally:
            if node.poll() is None:
                node.kill()
        assert node.returncode == 0, err
        result = json.loads(out)
        assert result["reason"] == "transport close"
        assert result["again"]["agentId"] == result["first"]["agentId"]
        assert result["sync"]["ok"] is True


# --- sends in flight ------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a sender saw: per clientMsgId, the acknowledged message and whether it was
    created by that attempt (False: an earlier attempt had stored it and its answer was lost)."""

    acked: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: dict[str, bool] = field(default_factory=dict)
    retries: int = 0
    socket_acks: int = 0
    busy: asyncio.Event = field(default_factory=asyncio.Event)  # every sender well under way


SOCKET_SENDERS = 10
REST_SENDERS = 2
PER_SENDER = 60


async def socket_sender(base_url: str, jwt: str, room_id: str, name: str, out: Outcome) -> None:
    sock = Socket(base_url, reconnection=True)
    try:
        await sock.connect(jwt)
        for i in range(PER_SENDER):
            payload = {"roomId": room_id, "body": f"{name}:{i}", "clientMsgId": f"{name}-{i}"}
            while True:
                connections = len(sock.events["connected"])
                try:
                    ack = await sock.call("message:send", payload, within=5)
                except socketio.exceptions.SocketIOError:
                    ack = None  # disconnected, or no answer in time: send it again
                if isinstance(ack, dict) and ack.get("ok"):
                    break
                assert ack is None or ack["error"]["code"] == "unavailable", ack
                out.retries += 1
                # Retry on the next connection, as the docs say (same clientMsgId).
                await sock.wait_until(
                    lambda n=connections: len(sock.events["connected"]) > n,  # type: ignore[misc]
                    within=RECONNECT_WITHIN,
                )
            out.acked[payload["clientMsgId"]] = ack["message"]
            out.created[payload["clientMsgId"]] = ack["created"]
            out.socket_acks += 1
            if out.socket_acks == SOCKET_SENDERS * 10:
                out.busy.set()
            await asyncio.sleep(0.05)
    finally:
        await sock.close()


def rest_sender(srv: Server, jwt: str, room_id: str, name: str, out: Outcome) -> None:
    api = srv.api(jwt)
    for i in range(PER_SENDER):
        payload = {"body": f"{name}:{i}", "clientMsgId": f"{name}-{i}"}
        deadline = time.monotonic() + RECONNECT_WITHIN
        while True:
            try:
                resp = api.post(f"/api/v1/rooms/{room_id}/messages", payload)
            except OSError:
                resp = None  # refused (no server yet) or cut
            if resp is not None and resp.status in (200, 201):
                break
            assert resp is None or resp.status == 503, resp.text
            assert time.monotonic() < deadline, "no server came back"
            out.retries += 1
            time.sleep(0.1)
        out.acked[payload["clientMsgId"]] = resp.body
        out.created[payload["clientMsgId"]] = resp.status == 201
        time.sleep(0.05)


def stored(srv: Server, jwt: str, room_id: str) -> list[dict[str, Any]]:
    api, after, messages = srv.api(jwt), 0, []
    while True:
        page = api.get(f"/api/v1/rooms/{room_id}/messages", params={"after": after, "limit": 200})
        assert page.status == 200, page.text
        messages += page.body["messages"]
        if not page.body["hasMore"]:
            return messages
        after = messages[-1]["seq"]


def test_sends_in_flight_at_sigterm_are_answered_or_safely_retried(database, tmp_path, admin):
    with two_servers(database.env, tmp_path) as servers:
        jwt = login(servers[0], admin.api_token)
        room = servers[0].api(jwt).post("/api/v1/rooms", {"slug": f"term-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201
        room_id = room.body["id"]
        out = Outcome()

        async def scenario() -> None:
            senders = [
                asyncio.create_task(socket_sender(servers[0].base_url, jwt, room_id, f"s{k}", out))
                for k in range(SOCKET_SENDERS)
            ]
            rest = [
                threading.Thread(target=rest_sender, args=(servers[0], jwt, room_id, f"r{k}", out))
                for k in range(REST_SENDERS)
            ]
            for thread in rest:
                thread.start()
            try:
                await out.busy.wait()  # SIGTERM while every sender is busy
                await blocking(restart, servers, tmp_path)
                await asyncio.gather(*senders)
            finally:
                for task in senders:
                    task.cancel()
                await asyncio.gather(*senders, return_exceptions=True)
                for thread in rest:
                    await blocking(thread.join)

        run(scenario(), timeout=300)
        messages = stored(servers[-1], jwt, room_id)
        total = (SOCKET_SENDERS + REST_SENDERS) * PER_SENDER
        by_id = {m["id"]: m for m in messages}
        acked_but_missing = [a for a in out.acked.values() if a["id"] not in by_id]
        assert acked_but_missing == []
        client_ids = [m["clientMsgId"] for m in messages]
        assert len(client_ids) == len(set(client_ids)) == total  # no duplicates, none lost
        assert [m["seq"] for m in messages] == list(range(1, total + 1))
        # Nothing committed lost its answer: a retry never found its message already stored.
        assert [cmid for cmid, created in out.created.items() if not created] == []
        assert out.retries > 0, "the restart did not interrupt anything: no test"
        log = servers[0].log_text()
        assert "Traceback" not in log and " ERROR " not in log, log[-3000:]


def test_work_in_flight_at_sigterm_is_answered_and_new_work_refused(database, tmp_path, admin):
    """A REST post held up (here by a row lock on its room) when SIGTERM arrives keeps the
    server draining; meanwhile a new request on a kept-alive connection gets 503
    `unavailable` with `Connection: close` and a socket event gets an `unavailable` ack. The
    post is then finished and answered, the socket's transport closed, and the server exits."""
    srv = start_server(database.env, tmp_path / "server.log")
    lock = database.connect()
    try:
        jwt = login(srv, admin.api_token)
        api = srv.api(jwt)
        room = api.post("/api/v1/rooms", {"slug": f"term-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201
        room_id = room.body["id"]
        kept = http.client.HTTPConnection("127.0.0.1", port_of(srv), timeout=30)
        kept.request("GET", "/healthz")
        healthy = kept.getresponse()
        assert healthy.status == 200 and healthy.read()
        answers: list[Any] = []

        def post() -> None:
            answers.append(api.post(f"/api/v1/rooms/{room_id}/messages", {"body": "in flight"}))

        def refused_on_the_kept_connection() -> None:
            kept.request("GET", "/api/v1/rooms", headers={"Authorization": f"Bearer {jwt}"})
            refused = kept.getresponse()
            assert refused.status == 503
            assert refused.getheader("Connection") == "close"
            assert json.loads(refused.read())["error"]["code"] == "unavailable"

        async def scenario() -> None:
            sock = Socket(srv.base_url)
            poster = threading.Thread(target=post)
            try:
                await sock.connect(jwt)
                with lock.cursor() as cur:
                    cur.execute("BEGIN")
                    cur.execute("SELECT 1 FROM rooms WHERE id = %s FOR UPDATE", (room_id,))
                poster.start()
                await blocking(wait_until, lambda: waiting_on_a_lock(lock), "the post to wait")
                srv.process.send_signal(signal.SIGTERM)
                await blocking(wait_until, lambda: "shutting down" in srv.log_text(), "draining")

                await blocking(refused_on_the_kept_connection)
                ack = await sock.call("room:sync", {"roomId": room_id, "afterSeq": 0})
                assert error_code(ack) == "unavailable"
                assert not sock.disconnects  # still draining: nothing is closed yet

                with lock.cursor() as cur:
                    cur.execute("COMMIT")
                await blocking(poster.join, 30)
                assert await sock.wait_disconnected() == "transport error"
            finally:
                await sock.close()

        run(scenario())
        assert answers and answers[0].status == 201, answers
        assert answers[0].body["body"] == "in flight"
        assert srv.process.wait(timeout=30) == 0, srv.log_text()[-3000:]
    finally:
        lock.close()
        if srv.process.poll() is None:
            stop_server(srv)


def waiting_on_a_lock(conn: Any) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return bool(cur.fetchone()[0])


def wait_until(condition: Any, what: str, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)
