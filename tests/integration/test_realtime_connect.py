"""socket.io handshake on /agents: how a JWT is presented, what a refusal looks like, what a
connected socket is told, and the feature switch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Iterator

import jwt as pyjwt
import pytest
import socketio

from tests.realtime_support import RawSocket, Socket, blocking, custom_server, ok, run
from tests.servers import login, run_cli


def _refusal(sock: Socket) -> dict[str, object]:
    """The connect_error payload, checked to carry the error object both at the top level
    (python-socketio's view) and under ``data`` (what socket.io-client exposes as err.data)."""
    assert sock.connect_errors, "expected a connect_error"
    data = sock.connect_errors[-1]
    assert isinstance(data, dict), data
    assert data["data"]["code"] == data["code"]
    assert data["data"]["message"] == data["message"]
    return data


async def _refused(base_url: str, token: str | None, via: str = "auth") -> dict[str, object]:
    sock = Socket(base_url)
    try:
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sock.connect(token, via=via)
        return _refusal(sock)
    finally:
        await sock.close()


def test_connect_with_auth_payload_reports_rooms_and_last_seq(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    other = make_room(alice)
    for body in ("one", "two"):
        assert alice.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": body}).status == 201

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt, via="auth")
            info = sock.events["connected"][0]
            assert info["agentId"] == alice.id
            by_id = {r["id"]: r for r in info["rooms"]}
            assert set(by_id) == {room["id"], other["id"]}
            assert by_id[room["id"]] == {"id": room["id"], "slug": room["slug"], "lastSeq": 2}
            assert by_id[other["id"]]["lastSeq"] == 0
            assert isinstance(info["expiresAt"], str)
        finally:
            await sock.close()

    run(scenario())


def test_connect_with_query_string_token(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt, via="query", transports=["polling", "websocket"])
            assert [r["id"] for r in sock.events["connected"][0]["rooms"]] == [room["id"]]
            ack = ok(await sock.call("message:send", {"roomId": room["id"], "body": "via query"}))
            assert ack["message"]["seq"] == 1
        finally:
            await sock.close()

    run(scenario())


def test_missing_token_is_refused(server):
    async def scenario() -> None:
        refusal = await _refused(server.base_url, None)
        assert refusal["code"] == "unauthorized"
        assert "token" in str(refusal["message"])

    run(scenario())


def test_garbage_and_forged_tokens_are_refused(server, make_agent):
    alice = make_agent()
    claims = pyjwt.decode(alice.jwt, options={"verify_signature": False})
    forged = pyjwt.encode(claims, "x" * 64, algorithm="HS256")
    none_alg = pyjwt.encode(claims, "", algorithm="none")

    async def scenario() -> None:
        for token in ("not-a-jwt", forged, none_alg, alice.api_token):
            refusal = await _refused(server.base_url, token)
            assert refusal["code"] == "unauthorized", token

    run(scenario())


def test_expired_token_is_refused(server, make_agent):
    alice = make_agent()
    claims = pyjwt.decode(alice.jwt, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 120, exp=now - 60)
    expired = pyjwt.encode(claims, server.env["JWT_SECRET"], algorithm="HS256")

    async def scenario() -> None:
        refusal = await _refused(server.base_url, expired)
        assert refusal["code"] == "unauthorized"
        assert "expired" in str(refusal["message"])

    run(scenario())


def test_revoked_token_is_refused_at_handshake(server, make_agent):
    alice = make_agent()
    prefix = alice.api_token.split("_")[1]
    assert alice.api.delete(f"/api/v1/tokens/{prefix}").status in (200, 204)

    async def scenario() -> None:
        refusal = await _refused(server.base_url, alice.jwt)
        assert refusal["code"] == "unauthorized"

    run(scenario())


def test_disabled_agent_is_refused_at_handshake(server, admin, make_agent):
    alice = make_agent()
    assert admin.api.patch(f"/api/v1/agents/{alice.id}", {"disabled": True}).status == 200

    async def scenario() -> None:
        refusal = await _refused(server.base_url, alice.jwt, via="query")
        assert refusal["code"] == "unauthorized"

    run(scenario())


def test_browser_origin_must_be_allowed(server, make_agent):
    alice = make_agent()

    async def scenario() -> None:
        allowed = Socket(server.base_url)
        try:
            # The default ALLOWED_ORIGINS includes http://127.0.0.1:3000.
            await allowed.connect(alice.jwt, headers={"Origin": "http://127.0.0.1:3000"})
        finally:
            await allowed.close()
        for transports in (["websocket"], ["polling"]):
            stranger = Socket(server.base_url)
            try:
                with pytest.raises(socketio.exceptions.ConnectionError):
                    await stranger.connect(
                        alice.jwt,
                        headers={"Origin": "http://evil.example"},
                        transports=transports,
                    )
                assert not stranger.events["connected"]
            finally:
                await stranger.close()

    run(scenario())


def test_cidr_origins_allow_hosts_in_the_network(database, tmp_path, admin):
    with custom_server(
        database, tmp_path / "server.log", ALLOWED_ORIGINS="10.20.0.0/16,http://agents.lan:8080"
    ) as srv:
        _check_cidr_origins(srv, login(srv, admin.api_token))


def _check_cidr_origins(srv, jwt: str) -> None:

    async def scenario() -> None:
        for origin, allowed in (
            ("http://10.20.3.4:5173", True),
            ("http://agents.lan:8080", True),
            ("http://10.21.0.1", False),
            ("http://agents.lan", False),
        ):
            sock = Socket(srv.base_url)
            try:
                if allowed:
                    await sock.connect(jwt, headers={"Origin": origin})
                else:
                    with pytest.raises(socketio.exceptions.ConnectionError):
                        await sock.connect(jwt, headers={"Origin": origin})
            finally:
                await sock.close()

    run(scenario())


def test_messaging_disabled_turns_sockets_off_but_not_rest(database, tmp_path, admin):
    with custom_server(database, tmp_path / "server.log", FEATURE_MESSAGING_ENABLED="false") as srv:
        _check_messaging_disabled(srv, login(srv, admin.api_token))


def _check_messaging_disabled(srv, jwt: str) -> None:
    api = srv.api(jwt)

    async def scenario() -> None:
        sock = Socket(srv.base_url)
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sock.connect(jwt)
        finally:
            await sock.close()

    run(scenario())
    probe = api.get("/socket.io/", params={"EIO": "4", "transport": "polling"})
    assert probe.status == 404
    assert probe.error_code() == "not_found"
    slug = f"rest-{secrets.token_hex(4)}"
    room = api.post("/api/v1/rooms", {"slug": slug})
    assert room.status == 201, room.text
    posted = api.post(f"/api/v1/rooms/{room.body['id']}/messages", {"body": "still works"})
    assert posted.status == 201


class _Handshakes:
    """A server of its own (on a fresh database) with an owner, alice and a room of both,
    and a way to hold handshakes up: a lock on room_members stops them while they read the
    agent's rooms."""

    def __init__(self, db, srv, token: str) -> None:
        self.db, self.srv = db, srv
        self.owner_jwt = login(srv, token)
        self.owner = srv.api(self.owner_jwt)
        self.room = self.owner.post("/api/v1/rooms", {"slug": "handshake"}).body
        alice = self.owner.post("/api/v1/agents", {"name": "alice", "role": "agent"}).body
        self.alice_id = alice["id"]
        self.issued = self.owner.post(f"/api/v1/agents/{self.alice_id}/tokens", {}).body
        self.alice_jwt = login(srv, self.issued["token"])
        added = self.owner.post(
            f"/api/v1/rooms/{self.room['id']}/members", {"agentId": self.alice_id}
        )
        assert added.status == 201

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute("BEGIN; LOCK TABLE room_members IN ACCESS EXCLUSIVE MODE")
            yield
            with conn.cursor() as cur:
                cur.execute("COMMIT")
        finally:
            conn.close()

    def online(self) -> bool:
        members = self.owner.get(f"/api/v1/rooms/{self.room['id']}/members").body["members"]
        return bool({m["agentId"]: m["online"] for m in members}[self.alice_id])

    async def goes_offline_after_a_polite_visit(self, watcher: Socket) -> None:
        """A well-behaved socket of alice connects and leaves; the watcher hears alice go
        offline only if nothing else keeps her online."""
        polite = Socket(self.srv.base_url)
        try:
            await polite.connect(self.alice_jwt)
        finally:
            await polite.close()
        update = {"roomId": self.room["id"], "agentId": self.alice_id, "status": "offline"}
        await watcher.wait_for("presence:update", lambda p: p == update)
        assert not await blocking(self.online)


@pytest.fixture
def handshakes(fresh_database, tmp_path) -> Iterator[_Handshakes]:
    db = fresh_database()
    run_cli(db.env, "agent", "create", "--name", "owner", "--role", "admin")
    token = run_cli(db.env, "token", "issue", "--agent", "owner").stdout.strip()
    with custom_server(db, tmp_path / "server.log") as srv:
        yield _Handshakes(db, srv, token)


def test_a_client_gone_mid_handshake_does_not_stay_online(handshakes):
    """A client that sends the namespace CONNECT and vanishes while the server is still
    reading its rooms does not leave its agent online. socket.io runs no disconnect handler
    for a handshake in progress, but engine.io handles the CONNECT on the connection's read
    loop, so it sees the close only once the handshake is over, and then the namespace's
    disconnect runs: no timer has to sweep such sockets up."""
    h = handshakes

    async def scenario() -> None:
        watcher = Socket(h.srv.base_url)
        try:
            await watcher.connect(h.owner_jwt)
            with h.held():
                raw = await RawSocket.open(h.srv.base_url)
                await raw.send("40/agents," + json.dumps({"token": h.alice_jwt}))
                await asyncio.sleep(0.5)  # the handshake now waits for the lock
                raw.abort()
                await asyncio.sleep(0.5)  # and the connection is gone
            await h.goes_offline_after_a_polite_visit(watcher)
        finally:
            await watcher.close()

    run(scenario())


def test_a_session_revoked_mid_handshake_is_refused_and_leaves_nothing_behind(handshakes):
    """Revoking the token while a handshake with it is in progress: the handshake is refused,
    and the server keeps nothing of it (a leftover would stay in the room's broadcasts, each
    broadcast then logging that it cannot reach it)."""
    h = handshakes

    async def scenario() -> None:
        watcher = Socket(h.srv.base_url)
        doomed = Socket(h.srv.base_url)
        try:
            await watcher.connect(h.owner_jwt)
            with h.held():
                connecting = asyncio.create_task(doomed.connect(h.alice_jwt))
                await asyncio.sleep(0.5)  # the handshake now waits for the lock
                prefix = h.issued["prefix"]
                revoked = await blocking(h.owner.delete, f"/api/v1/tokens/{prefix}")
                assert revoked.status == 204
            with pytest.raises(socketio.exceptions.ConnectionError):
                await connecting
            assert not doomed.events["connected"]
            before = h.srv.log_text().count("Cannot send to sid")
            posted = await blocking(
                h.owner.post, f"/api/v1/rooms/{h.room['id']}/messages", {"body": "after"}
            )
            assert posted.status == 201
            await watcher.wait_for("message:new", lambda m: m["body"] == "after")
            assert not await blocking(h.online)
            assert h.srv.log_text().count("Cannot send to sid") == before
        finally:
            await doomed.close()
            await watcher.close()

    run(scenario())
