"""The socket metrics over real sockets: agenthub_agents_connected, agenthub_rooms_active and
agenthub_websocket_latency_seconds, read from GET /metrics before and after.

These tests run against a server of their own: the gauges count every socket of the process,
so sockets other test modules open (or are still closing) on the shared server would make
exact values impossible to assert.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.test_metrics import scrape, value
from tests.realtime_support import WAIT, Socket, blocking, custom_server, error_code, ok, run
from tests.servers import AgentCtx, Server, login

AGENTS = "agenthub_agents_connected"
ROOMS = "agenthub_rooms_active"
WS_COUNT = "agenthub_websocket_latency_seconds_count"
WS_SUM = "agenthub_websocket_latency_seconds_sum"

if TYPE_CHECKING:
    # Only for annotations: imported at run time, pytest would try to collect it as a test.
    from tests.servers import ScratchDatabase


@pytest.fixture(scope="module")
def hub(database: ScratchDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("metrics-sockets") / "server.log"
    with custom_server(database, log_path) as srv:
        yield srv


def gauges(server: Server) -> tuple[float, float]:
    text = scrape(server)
    return value(text, AGENTS), value(text, ROOMS)


def ws_count(text: str, event: str) -> float:
    return value(text, WS_COUNT, {"event": event})


async def until_gauges(server: Server, expected: tuple[float, float]) -> None:
    """Poll /metrics until (agents connected, rooms active) reads ``expected``: the server
    forgets a closed socket shortly after the client has returned from closing it."""
    deadline = time.monotonic() + WAIT
    seen = await blocking(gauges, server)
    while seen != expected:
        assert time.monotonic() < deadline, f"gauges stayed at {seen}, expected {expected}"
        await asyncio.sleep(0.05)
        seen = await blocking(gauges, server)


def agent_on(hub: Server, admin: AgentCtx) -> AgentCtx:
    """A fresh agent, created through ``hub`` by the session's admin, and logged in there."""
    api = hub.api(login(hub, admin.api_token))
    name = f"metrics-{uuid.uuid4().hex[:10]}"
    created = api.post("/api/v1/agents", {"name": name, "role": "agent"})
    assert created.status == 201, created.text
    issued = api.post(f"/api/v1/agents/{created.body['id']}/tokens", {})
    assert issued.status == 201, issued.text
    token = issued.body["token"]
    jwt = login(hub, token)
    return AgentCtx(created.body["id"], name, "agent", token, jwt, hub.api(jwt))


def room_of(owner: AgentCtx, *members: AgentCtx) -> dict[str, Any]:
    slug = f"metrics-{uuid.uuid4().hex[:10]}"
    room = owner.api.post("/api/v1/rooms", {"slug": slug, "name": slug})
    assert room.status == 201, room.text
    for member in members:
        added = owner.api.post(f"/api/v1/rooms/{room.body['id']}/members", {"agentId": member.id})
        assert added.status == 201, added.text
    return dict(room.body)


def test_gauges_and_latency_follow_live_sockets(hub: Server, admin: AgentCtx) -> None:
    alice, bob = agent_on(hub, admin), agent_on(hub, admin)
    shared = room_of(alice, bob)
    room_of(alice)  # alice's own room: active while she is connected
    room_of(bob)  # bob's own room
    room_of(agent_on(hub, admin))  # no member of it connects: never active

    async def scenario() -> None:
        await until_gauges(hub, (0.0, 0.0))
        before = await blocking(scrape, hub)
        a1, a2, b = Socket(hub.base_url), Socket(hub.base_url), Socket(hub.base_url)
        try:
            await a1.connect(alice.jwt)
            await a2.connect(alice.jwt)
            # Two sockets, one agent, online in her own room and the shared one.
            await until_gauges(hub, (1.0, 2.0))
            await b.connect(bob.jwt)
            await until_gauges(hub, (2.0, 3.0))

            sent = ok(await a1.call("message:send", {"roomId": shared["id"], "body": "hi"}))
            assert sent["message"]["seq"] == 1
            ok(await b.call("room:sync", {"roomId": shared["id"], "afterSeq": 0}))
            after = await blocking(scrape, hub)
            send = {"event": "message:send"}
            assert ws_count(after, "message:send") == ws_count(before, "message:send") + 1
            assert value(after, WS_SUM, send) > value(before, WS_SUM, send)
            assert ws_count(after, "room:sync") == ws_count(before, "room:sync") + 1

            # Bob goes: the shared room stays active (alice is there), bob's own room does not.
            await b.close()
            await until_gauges(hub, (1.0, 2.0))
            await a1.close()
            await a2.close()
            await until_gauges(hub, (0.0, 0.0))
        finally:
            for sock in (a1, a2, b):
                await sock.close()

    run(scenario())


def test_joining_and_leaving_a_room_moves_rooms_active(hub: Server, admin: AgentCtx) -> None:
    alice, bob = agent_on(hub, admin), agent_on(hub, admin)
    bobs = room_of(bob)

    async def scenario() -> None:
        await until_gauges(hub, (0.0, 0.0))
        sock = Socket(hub.base_url)
        try:
            await sock.connect(alice.jwt)
            await until_gauges(hub, (1.0, 0.0))  # connected, in no room yet
            ok(await sock.call("room:join", {"roomId": bobs["id"]}))
            await until_gauges(hub, (1.0, 1.0))
            ok(await sock.call("room:leave", {"roomId": bobs["id"]}))
            await until_gauges(hub, (1.0, 0.0))
        finally:
            await sock.close()
        await until_gauges(hub, (0.0, 0.0))

    run(scenario())


def test_unknown_events_share_one_label(hub: Server, admin: AgentCtx) -> None:
    alice = agent_on(hub, admin)
    made_up = ("made-up:event-7f3a", "another:odd-one")

    async def scenario() -> None:
        before = await blocking(scrape, hub)
        sock = Socket(hub.base_url)
        try:
            await sock.connect(alice.jwt)
            for name in made_up:
                assert error_code(await sock.emit_raw(name, {})) == "validation_failed"
        finally:
            await sock.close()
        after = await blocking(scrape, hub)
        assert ws_count(after, "unknown") == ws_count(before, "unknown") + 2
        assert not any(name in after for name in made_up)

    run(scenario())
