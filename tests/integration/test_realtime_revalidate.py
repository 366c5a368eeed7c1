"""Revocations made by another process reach live sockets: the `agenthub` CLI revokes a token
or disables an agent in the database only (no event reaches the server), and the server's
periodic re-check (SOCKET_REVALIDATE_SECONDS) ends the affected sockets, and only those.

The server here re-checks every second; each "eventually" is a bounded wait, never a timing
assertion.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
import socketio

from tests.conftest import AgentCtx, Server, login, run_cli
from tests.realtime_support import WAIT, Socket, blocking, custom_server, error_code, ok, run

if TYPE_CHECKING:
    # Only for annotations: imported at run time, pytest would try to collect it as a test.
    from tests.conftest import TestDatabase

Sql = Callable[..., list[tuple[object, ...]]]


@pytest.fixture(scope="module")
def hub(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("revalidate") / "server.log"
    with custom_server(database, log_path, SOCKET_REVALIDATE_SECONDS="1") as srv:
        yield srv


def prefix_of(api_token: str) -> str:
    return api_token.split("_")[1]  # agt_<prefix>_<secret>


def agent_on(hub: Server, admin: AgentCtx, role: str = "agent") -> AgentCtx:
    """A fresh agent, created through ``hub`` by the session's admin, and logged in there."""
    api = hub.api(login(hub, admin.api_token))
    name = f"reval-{uuid.uuid4().hex[:10]}"
    created = api.post("/api/v1/agents", {"name": name, "role": role})
    assert created.status == 201, created.text
    token = second_token(hub, admin, created.body["id"])
    jwt = login(hub, token)
    return AgentCtx(created.body["id"], name, role, token, jwt, hub.api(jwt))


def second_token(hub: Server, admin: AgentCtx, agent_id: str) -> str:
    issued = hub.api(login(hub, admin.api_token)).post(f"/api/v1/agents/{agent_id}/tokens", {})
    assert issued.status == 201, issued.text
    return str(issued.body["token"])


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
            # The pass that ended them checked the other sockets too: those stay.
            ack = ok(await survivor.call("message:send", {"roomId": room["id"], "body": "still"}))
            await watcher.wait_for("message:new", lambda m: m["id"] == ack["message"]["id"])
            assert not survivor.disconnects and not watcher.disconnects
            assert not survivor.events["session:revoked"]
            assert await refused(hub, alice.jwt) == "unauthorized"
        finally:
            for sock in (doomed, also_doomed, survivor, watcher):
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


def test_api_token_expiring_in_the_database_ends_its_socket(
    hub: Server, admin: AgentCtx, sql: Sql
) -> None:
    alice = agent_on(hub, admin)

    async def scenario() -> None:
        sock = Socket(hub.base_url)
        try:
            await sock.connect(alice.jwt)
            sql(
                "UPDATE api_tokens SET expires_at = now() WHERE prefix = %s",
                prefix_of(alice.api_token),
            )
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
            await code_becomes(sock, "not_found")
            sql("UPDATE agents SET role = 'admin' WHERE id = %s", carol.id)
            await code_becomes(sock, "forbidden")
            assert not sock.disconnects
        finally:
            await sock.close()

    run(scenario())
