"""Revocations made by another process reach live sockets at once: the `agenthub` CLI revokes a
token or disables an agent and sends a PostgreSQL notification in the same transaction; every
server hears it and ends the affected sockets, and only those. A notification missed while a
server's listener was down is made up for by one re-check of its live sockets when the listener
is back (docs/adr/0005-auth-notifications.md).

The servers here are started with SOCKET_REVALIDATE_SECONDS=300 (the deprecated periodic
re-check, now ignored): were a timer what ends the sockets, no test here would see it within its
bounds. Each "eventually" is a bounded wait, never a timing assertion.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import socketio

from tests.auth_support import (
    agent_on,
    listener_held_down,
    prefix_of,
    second_token,
    wait_listener,
)
from tests.realtime_support import WAIT, Socket, blocking, custom_server, error_code, ok, run
from tests.servers import AgentCtx, Server, login, run_cli

if TYPE_CHECKING:
    # Only for annotations: imported at run time, pytest would try to collect it as a test.
    from tests.servers import ScratchDatabase

Sql = Callable[..., list[tuple[object, ...]]]

NO_TIMER = {"SOCKET_REVALIDATE_SECONDS": "300"}


@pytest.fixture(scope="module")
def hub(database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("revalidate") / "server.log"
    with custom_server(database, log_path, **NO_TIMER) as srv:
        wait_listener(srv)
        yield srv


def room_of(owner: AgentCtx, *members: AgentCtx, visibility: str = "public") -> dict[str, Any]:
    slug = f"reval-{uuid.uuid4().hex[:10]}"
    room = owner.api.post("/api/v1/rooms", {"slug": slug, "name": slug, "visibility": visibility})
    assert room.status == 201, room.text
    for member in members:
        added = owner.api.post(f"/api/v1/rooms/{room.body['id']}/members", {"agentId": member.id})
        assert added.status == 201, added.text
    return dict(room.body)


async def refused(hub: Server, jwt: str) -> str:
    """The error code a new handshake with ``jwt`` is refused with."""
    sock = Socket(hub.base_url)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sock.connect(jwt)
        return str(sock.connect_errors[-1]["code"])
    finally:
        await sock.close()


def test_cli_token_revoke_ends_that_tokens_sockets_only(hub: Server, admin: AgentCtx) -> None:
    alice, bob = agent_on(hub, admin), agent_on(hub, admin)
    room = room_of(alice, bob)
    other_jwt = login(hub, second_token(hub, admin, alice.id))

    async def scenario() -> None:
        doomed, also_doomed, survivor, watcher = (Socket(hub.base_url) for _ in range(4))
        try:
            await doomed.connect(alice.jwt)
            await also_doomed.connect(alice.jwt)
            await survivor.connect(other_jwt)  # same agent, another API token
            await watcher.connect(bob.jwt)
            done = await blocking(run_cli, hub.env, "token", "revoke", prefix_of(alice.api_token))
            assert done.stdout.strip() == f"revoked {prefix_of(alice.api_token)}"
            for sock in (doomed, also_doomed):
                kicked = await sock.wait_for("session:revoked")
                assert kicked == {"code": "unauthorized", "message": "the API token was revoked"}
                await sock.wait_disconnected()
            ack = ok(await survivor.call("message:send", {"roomId": room["id"], "body": "still"}))
            await watcher.wait_for("message:new", lambda m: m["id"] == ack["message"]["id"])
            assert not survivor.disconnects and not watcher.disconnects
            assert not survivor.events["session:revoked"]
            assert await refused(hub, alice.jwt) == "unauthorized"
        finally:
            for sock in (doomed, also_doomed, survivor, watcher):
                await sock.close()

    run(scenario())


@pytest.mark.parametrize("command", ["token revoke", "agent disable"])
def test_a_sending_socket_stores_nothing_after_the_cli_returns(
    hub: Server, admin: AgentCtx, sql: Sql, command: str
) -> None:
    alice = agent_on(hub, admin)
    room = room_of(alice)
    args = (
        ("token", "revoke", prefix_of(alice.api_token))
        if command == "token revoke"
        else ("agent", "disable", alice.name)
    )

    def stored() -> int:
        return int(str(sql("SELECT count(*) FROM messages WHERE room_id = %s", room["id"])[0][0]))

    async def scenario() -> None:
        sock = Socket(hub.base_url)
        acked = 0

        async def keep_sending() -> None:
            nonlocal acked
            while not sock.disconnects:
                try:
                    ack = await sock.call(
                        "message:send", {"roomId": room["id"], "body": f"m{acked}"}, within=5
                    )
                except (socketio.exceptions.SocketIOError, TimeoutError):
                    return
                if not ack.get("ok"):
                    return
                acked += 1
                await sock.notify()

        try:
            await sock.connect(alice.jwt)
            sender = asyncio.create_task(keep_sending())
            await sock.wait_until(lambda: acked >= 5)
            await blocking(run_cli, hub.env, *args)
            at_return = await blocking(stored)
            await sock.wait_for("session:revoked")
            await sock.wait_disconnected()
            await asyncio.wait_for(sender, WAIT)
            assert await blocking(stored) == at_return
            assert acked <= at_return
        finally:
            await sock.close()

    run(scenario())


def test_cli_agent_disable_ends_all_its_sockets(hub: Server, admin: AgentCtx) -> None:
    alice, bob = agent_on(hub, admin), agent_on(hub, admin)
    room = room_of(bob, alice)
    other_jwt = login(hub, second_token(hub, admin, alice.id))

    async def scenario() -> None:
        a1, a2, b = (Socket(hub.base_url) for _ in range(3))
        try:
            await a1.connect(alice.jwt)
            await a2.connect(other_jwt)
            await b.connect(bob.jwt)
            await blocking(run_cli, hub.env, "agent", "disable", alice.name)
            for sock in (a1, a2):
                kicked = await sock.wait_for("session:revoked")
                assert kicked == {"code": "unauthorized", "message": "the agent was disabled"}
                await sock.wait_disconnected()
            await b.wait_for(
                "presence:update",
                lambda p: p == {"roomId": room["id"], "agentId": alice.id, "status": "offline"},
            )
            ok(await b.call("message:send", {"roomId": room["id"], "body": "bob stays"}))
            assert not b.disconnects
            assert await refused(hub, other_jwt) == "unauthorized"
        finally:
            for sock in (a1, a2, b):
                await sock.close()

    run(scenario())


def test_a_socket_ends_when_its_api_token_expires(hub: Server, admin: AgentCtx) -> None:
    alice = agent_on(hub, admin)
    expires = datetime.now(UTC) + timedelta(seconds=4)
    token = second_token(hub, admin, alice.id, expiresAt=expires.isoformat())
    jwt = login(hub, token)

    async def scenario() -> None:
        sock = Socket(hub.base_url)
        try:
            await sock.connect(jwt)
            # The session was issued to end with its API token, so its own timer ends it.
            ends = sock.events["connected"][0]["expiresAt"].replace("Z", "+00:00")
            assert datetime.fromisoformat(ends) <= expires
            ended = await sock.wait_for("session:expired")
            assert ended["code"] == "unauthorized"
            await sock.wait_disconnected()
            assert time.time() >= expires.timestamp() - 1.5  # not before its time
        finally:
            await sock.close()

    run(scenario())


def test_a_hand_edit_announced_with_notify_reaches_live_sockets(
    hub: Server, admin: AgentCtx, sql: Sql
) -> None:
    """docs/SECURITY.md: after editing api_tokens or agents by hand, `NOTIFY agenthub_auth`."""
    alice = agent_on(hub, admin)

    async def scenario() -> None:
        sock = Socket(hub.base_url)
        try:
            await sock.connect(alice.jwt)
            sql(
                "UPDATE api_tokens SET expires_at = now() WHERE prefix = %s",
                prefix_of(alice.api_token),
            )
            sql("NOTIFY agenthub_auth")
            kicked = await sock.wait_for("session:revoked")
            assert kicked == {"code": "unauthorized", "message": "the API token expired"}
            await sock.wait_disconnected()
        finally:
            await sock.close()

    run(scenario())


def test_a_changed_role_applies_to_the_live_socket(hub: Server, admin: AgentCtx, sql: Sql) -> None:
    carol = agent_on(hub, admin, role="admin")
    bob = agent_on(hub, admin)
    hidden = room_of(bob, visibility="private")
    sync = {"roomId": hidden["id"], "afterSeq": 0}

    async def code_becomes(sock: Socket, wanted: str) -> None:
        deadline = time.monotonic() + WAIT
        while (code := error_code(await sock.call("room:sync", sync))) != wanted:
            assert time.monotonic() < deadline, f"room:sync kept answering {code}"
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        sock = Socket(hub.base_url)
        try:
            await sock.connect(carol.jwt)
            # An admin sees the private room (but reads only as a member); an agent does not
            # see it at all.
            assert error_code(await sock.call("room:sync", sync)) == "forbidden"
            sql("UPDATE agents SET role = 'agent' WHERE id = %s", carol.id)
            sql("NOTIFY agenthub_auth")
            await code_becomes(sock, "not_found")
            assert carol.api.get("/api/v1/audit").status == 403  # REST too
            sql("UPDATE agents SET role = 'admin' WHERE id = %s", carol.id)
            sql("NOTIFY agenthub_auth")
            await code_becomes(sock, "forbidden")
            assert not sock.disconnects
        finally:
            await sock.close()

    run(scenario())


def test_a_revocation_missed_while_the_listener_was_down_ends_the_socket_when_it_is_back(
    fresh_database: Callable[[], ScratchDatabase], tmp_path: Path
) -> None:
    db = fresh_database()
    with custom_server(db, tmp_path / "server.log", **NO_TIMER) as srv:
        run_cli(srv.env, "agent", "create", "--name", "solo")
        token = run_cli(srv.env, "token", "issue", "--agent", "solo").stdout.strip()
        jwt = login(srv, token)
        conn = db.connect()

        async def scenario() -> None:
            sock = Socket(srv.base_url)
            try:
                await sock.connect(jwt)
                with listener_held_down(conn, srv, db.name):
                    # Revoked while nobody listens: this server hears nothing of it.
                    with conn.cursor() as cur:
                        cur.execute(
                            "UPDATE api_tokens SET revoked_at = now() WHERE prefix = %s",
                            (prefix_of(token),),
                        )
                    await asyncio.sleep(0.5)
                    assert not sock.events["session:revoked"]
                # The listener reconnects and the live sockets are re-checked once.
                kicked = await sock.wait_for("session:revoked")
                assert kicked == {"code": "unauthorized", "message": "the API token was revoked"}
                await sock.wait_disconnected()
            finally:
                await sock.close()

        try:
            run(scenario())
        finally:
            conn.close()
        assert "notification listener lost its connection" in srv.log_text()
        assert "listening on agenthub_auth again after" in srv.log_text()
