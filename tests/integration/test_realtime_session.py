"""Session lifetime on a live socket (expiry, refresh, revocation, disabling) and flood control
(shutdown: test_shutdown.py)."""

from __future__ import annotations

import asyncio
import time

import jwt as pyjwt
import pytest
import socketio

from tests.realtime_support import Socket, blocking, custom_server, error_code, ok, run
from tests.servers import login


def short_lived(server, agent_jwt: str, seconds: int) -> tuple[str, float]:
    """The same session, re-signed to expire in ``seconds``: JWT_TTL_SECONDS cannot go below
    30, and a test should not wait that long. Signed with the server's key, so it is as valid
    as any JWT the server issues."""
    claims = pyjwt.decode(agent_jwt, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now, exp=now + seconds)
    return pyjwt.encode(claims, server.env["JWT_SECRET"], algorithm="HS256"), float(now + seconds)


async def sleep_until(epoch: float) -> None:
    await asyncio.sleep(max(0.0, epoch - time.time()))


def test_expiring_session_is_told_and_disconnected(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    token, _exp = short_lived(server, alice.jwt, 3)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(token)
            ok(await sock.call("room:sync", {"roomId": room["id"], "afterSeq": 0}))
            expired = await sock.wait_for("session:expired")
            assert expired["code"] == "unauthorized"
            await sock.wait_disconnected()
            again = Socket(server.base_url)
            try:
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await again.connect(token)
                assert again.connect_errors[-1]["code"] == "unauthorized"
            finally:
                await again.close()
        finally:
            await sock.close()

    run(scenario())


def test_refresh_with_a_fresh_jwt_keeps_the_socket(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    token, exp = short_lived(server, alice.jwt, 3)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(token)
            fresh = await blocking(login, server, alice.api_token)
            ack = ok(await sock.call("session:refresh", {"token": fresh}))
            new_exp = pyjwt.decode(fresh, options={"verify_signature": False})["exp"]
            assert ack["expiresAt"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(new_exp)))
            await sleep_until(exp + 1.5)
            ok(await sock.call("room:sync", {"roomId": room["id"], "afterSeq": 0}))
            assert not sock.events["session:expired"] and not sock.disconnects
        finally:
            await sock.close()

    run(scenario())


def test_bad_refresh_is_refused_and_the_old_expiry_stands(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    make_room(alice)
    token, exp = short_lived(server, alice.jwt, 4)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(token)
            other = await sock.call("session:refresh", {"token": bob.jwt})
            assert error_code(other) == "forbidden"
            assert error_code(await sock.call("session:refresh", {"token": "junk"})) == (
                "unauthorized"
            )
            assert error_code(await sock.call("session:refresh", {})) == "validation_failed"
            assert error_code(await sock.call("session:refresh", {"token": 1})) == (
                "validation_failed"
            )
            await sock.wait_for("session:expired")
            await sock.wait_disconnected()
            assert time.time() >= exp - 0.5  # not before its time
        finally:
            await sock.close()

    run(scenario())


def test_revoking_the_token_kicks_its_sockets_at_once(server, admin, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    issued = admin.api.post(f"/api/v1/agents/{alice.id}/tokens", {})
    assert issued.status == 201
    other_jwt = login(server, issued.body["token"])
    prefix = alice.api_token.split("_")[1]

    async def scenario() -> None:
        doomed, survivor, watcher = (Socket(server.base_url) for _ in range(3))
        try:
            await doomed.connect(alice.jwt)
            await survivor.connect(other_jwt)  # same agent, another API token
            await watcher.connect(alice.jwt)
            resp = await blocking(
                alice.api.with_token(other_jwt).delete, f"/api/v1/tokens/{prefix}"
            )
            assert resp.status in (200, 204), resp.text
            for sock in (doomed, watcher):
                kicked = await sock.wait_for("session:revoked")
                assert kicked["code"] == "unauthorized"
                await sock.wait_disconnected()
            ack = ok(await survivor.call("message:send", {"roomId": room["id"], "body": "still"}))
            assert ack["message"]["seq"] == 1
            assert not survivor.disconnects
        finally:
            for sock in (doomed, survivor, watcher):
                await sock.close()

    run(scenario())


def test_disabling_the_agent_kicks_all_its_sockets(server, admin, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(bob)
    assert bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": alice.id}).status == 201

    async def scenario() -> None:
        a1, a2, b = (Socket(server.base_url) for _ in range(3))
        try:
            await a1.connect(alice.jwt)
            await a2.connect(alice.jwt)
            await b.connect(bob.jwt)
            resp = await blocking(admin.api.patch, f"/api/v1/agents/{alice.id}", {"disabled": True})
            assert resp.status == 200
            for sock in (a1, a2):
                await sock.wait_for("session:revoked")
                await sock.wait_disconnected()
            await b.wait_for(
                "presence:update",
                lambda p: p == {"roomId": room["id"], "agentId": alice.id, "status": "offline"},
            )
        finally:
            for sock in (a1, a2, b):
                await sock.close()

    run(scenario())


def test_flooding_gets_rate_limited_then_disconnected(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    request = {"roomId": room["id"], "afterSeq": 0}

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            # Events refused by the bucket are answered at once; accepted ones queue behind
            # each other (one event at a time per socket), and those still queued when the
            # flood verdict lands are never answered: the socket is gone.
            acks = await asyncio.gather(
                *(sock.call("room:sync", request, within=5) for _ in range(150)),
                return_exceptions=True,
            )
            answered = [a for a in acks if isinstance(a, dict)]
            refused = [a for a in answered if a["ok"] is False]
            limited = [a for a in refused if error_code(a) == "rate_limited"]
            # SOCKET_FLOOD_DISCONNECT_AFTER defaults to 60 refused events. Events that arrive
            # while the socket is being closed are answered "unauthorized" (or not at all).
            assert len(limited) >= 60
            assert {error_code(a) for a in refused} <= {"rate_limited", "unauthorized"}
            assert all(a["error"]["details"]["retryAfter"] >= 1 for a in limited)
            ended = await sock.wait_for("session:ended")
            assert ended["code"] == "rate_limited"
            await sock.wait_disconnected()
        finally:
            await sock.close()

    run(scenario())


def test_a_socket_that_slows_down_recovers(database, tmp_path, admin):
    with custom_server(
        database,
        tmp_path / "server.log",
        SOCKET_EVENTS_PER_SECOND="5",
        SOCKET_BURST="5",
        SOCKET_FLOOD_DISCONNECT_AFTER="50",
    ) as srv:
        jwt = login(srv, admin.api_token)
        room = srv.api(jwt).post("/api/v1/rooms", {"slug": f"calm-{int(time.time() * 1000)}"})
        assert room.status == 201
        request = {"roomId": room.body["id"], "afterSeq": 0}

        async def scenario() -> None:
            sock = Socket(srv.base_url)
            try:
                await sock.connect(jwt)
                acks = await asyncio.gather(*(sock.call("room:sync", request) for _ in range(12)))
                assert [a["ok"] for a in acks].count(True) >= 5
                limited = [a for a in acks if not a["ok"]]
                assert limited and {error_code(a) for a in limited} == {"rate_limited"}
                assert limited[0]["error"]["message"] == "too many events: at most 5 per second"
                await asyncio.sleep(1.5)  # the bucket refills at 5 per second
                for _ in range(3):
                    ok(await sock.call("room:sync", request))
                assert not sock.disconnects
            finally:
                await sock.close()

        run(scenario())
