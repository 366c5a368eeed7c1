"""room:join / room:leave, membership changed over REST while connected, and presence
(presence:update events and ``online`` in GET /rooms/{id}/members).

"Stopped receiving" is shown with a barrier, not a pause: the server sends one socket its
events in the order they happen, so once a later message in another room has arrived, an
earlier one that was going to arrive would have arrived first.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp

from tests.realtime_support import (
    Socket,
    blocking,
    custom_server,
    error_code,
    ok,
    run,
)


def _online(api, room_id: str) -> dict[str, bool]:
    resp = api.get(f"/api/v1/rooms/{room_id}/members")
    assert resp.status == 200, resp.text
    return {m["agentId"]: m["online"] for m in resp.body["members"]}


def _add(api, room_id: str, agent_id: str) -> None:
    resp = api.post(f"/api/v1/rooms/{room_id}/members", {"agentId": agent_id})
    assert resp.status in (200, 201), resp.text


def _is_update(room_id: str, agent_id: str, status: str):
    return lambda p: p == {"roomId": room_id, "agentId": agent_id, "status": status}


def test_join_and_leave_over_the_socket(server, make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    both = make_room(alice)  # the barrier room: bob stays a member here
    _add(alice.api, both["id"], bob.id)
    private = make_room(alice, visibility="private")
    assert alice.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "before"}).status == 201

    async def scenario() -> None:
        a, b = Socket(server.base_url), Socket(server.base_url)
        try:
            await a.connect(alice.jwt)
            await b.connect(bob.jwt)
            joined = ok(await b.call("room:join", {"roomId": room["id"]}))
            assert joined["created"] is True
            assert joined["room"]["id"] == room["id"] and joined["room"]["lastSeq"] == 1
            assert joined["room"]["member"] is True
            await a.wait_for("presence:update", _is_update(room["id"], bob.id, "online"))
            assert (await blocking(_online, alice.api, room["id"]))[bob.id] is True
            # Joined the broadcasts at once.
            ok(await a.call("message:send", {"roomId": room["id"], "body": "welcome"}))
            await b.wait_for("message:new", lambda m: m["body"] == "welcome")
            again = ok(await b.call("room:join", {"roomId": room["id"]}))
            assert again["created"] is False

            left = ok(await b.call("room:leave", {"roomId": room["id"]}))
            assert left == {"ok": True, "roomId": room["id"]}
            await a.wait_for("presence:update", _is_update(room["id"], bob.id, "offline"))
            assert bob.id not in await blocking(_online, alice.api, room["id"])
            ok(await a.call("message:send", {"roomId": room["id"], "body": "gone?"}))
            ok(await a.call("message:send", {"roomId": both["id"], "body": "barrier"}))
            await b.wait_for("message:new", lambda m: m["body"] == "barrier")
            assert b.bodies(room["id"]) == ["welcome"]

            # Same rules as REST: private rooms are invisible, leaving twice is not found.
            assert error_code(await b.call("room:join", {"roomId": private["id"]})) == "not_found"
            missing = {"roomId": str(uuid.uuid4())}
            assert error_code(await b.call("room:join", missing)) == "not_found"
            assert error_code(await b.call("room:leave", {"roomId": room["id"]})) == "not_found"
            assert error_code(await b.call("room:join", {"roomId": "X!"})) == "validation_failed"
            assert error_code(await b.call("room:leave", {})) == "validation_failed"
        finally:
            await a.close()
            await b.close()

    run(scenario())


def test_membership_changed_over_rest_applies_to_live_sockets_at_once(
    server, admin, make_agent, make_room
):
    alice, carol = make_agent(), make_agent()
    room = make_room(alice)
    both = make_room(alice)
    _add(alice.api, both["id"], carol.id)

    async def scenario() -> None:
        a, c1, c2 = Socket(server.base_url), Socket(server.base_url), Socket(server.base_url)
        try:
            await a.connect(alice.jwt)
            await c1.connect(carol.jwt)
            await c2.connect(carol.jwt)
            assert [r["id"] for r in c1.events["connected"][0]["rooms"]] == [both["id"]]

            await blocking(_add, alice.api, room["id"], carol.id)  # over REST
            await a.wait_for("presence:update", _is_update(room["id"], carol.id, "online"))
            ok(await a.call("message:send", {"roomId": room["id"], "body": "for carol"}))
            for sock in (c1, c2):
                await sock.wait_for("message:new", lambda m: m["body"] == "for carol")

            # Only the member itself or an admin may remove a member.
            removed = await blocking(
                admin.api.delete, f"/api/v1/rooms/{room['id']}/members/{carol.id}"
            )
            assert removed.status == 204
            offline = _is_update(room["id"], carol.id, "offline")
            await a.wait_for("presence:update", offline)
            for sock in (c1, c2):  # carol's sockets hear that they are out
                await sock.wait_for("presence:update", offline)
            ok(await a.call("message:send", {"roomId": room["id"], "body": "not for carol"}))
            ok(await a.call("message:send", {"roomId": both["id"], "body": "barrier"}))
            for sock in (c1, c2):
                await sock.wait_for("message:new", lambda m: m["body"] == "barrier")
                assert sock.bodies(room["id"]) == ["for carol"]
            denied = await c1.call("room:sync", {"roomId": room["id"], "afterSeq": 0})
            assert error_code(denied) == "forbidden"
        finally:
            for sock in (a, c1, c2):
                await sock.close()

    run(scenario())


def test_presence_is_online_while_any_socket_of_the_agent_is_connected(
    server, admin, make_agent, make_room
):
    alice, bob = make_agent(), make_agent()
    room = make_room(bob)
    _add(bob.api, room["id"], alice.id)
    # A second API token for alice: revoking it is a way to end one socket deterministically
    # (the kick happens before the REST call returns).
    issued = admin.api.post(f"/api/v1/agents/{alice.id}/tokens", {})
    assert issued.status == 201
    second_jwt = server.api(issued.body["token"]).post("/api/v1/sessions").body["token"]

    async def scenario() -> None:
        watcher = Socket(server.base_url)
        a1, a2 = Socket(server.base_url), Socket(server.base_url)
        try:
            await watcher.connect(bob.jwt)
            assert (await blocking(_online, bob.api, room["id"])) == {bob.id: True, alice.id: False}
            await a1.connect(alice.jwt)
            await watcher.wait_for("presence:update", _is_update(room["id"], alice.id, "online"))
            assert (await blocking(_online, bob.api, room["id"]))[alice.id] is True
            await a2.connect(second_jwt)

            prefix = issued.body["prefix"]
            assert (await blocking(alice.api.delete, f"/api/v1/tokens/{prefix}")).status in (
                200,
                204,
            )
            await a2.wait_disconnected()
            assert (await blocking(_online, bob.api, room["id"]))[alice.id] is True  # a1 remains

            await a1.close()
            await watcher.wait_for("presence:update", _is_update(room["id"], alice.id, "offline"))
            assert (await blocking(_online, bob.api, room["id"]))[alice.id] is False
            updates = [u for u in watcher.events["presence:update"] if u["agentId"] == alice.id]
            assert [u["status"] for u in updates] == ["online", "offline"]
        finally:
            for sock in (watcher, a1, a2):
                await sock.close()

    run(scenario())


def test_socket_that_misses_heartbeats_goes_offline(database, tmp_path, admin):
    """A client that keeps its TCP connection but stops answering engine.io pings (a frozen
    process, a half-open connection) is dropped once PRESENCE_TIMEOUT_SECONDS have passed:
    engine.io's own ping timeout closes it and the namespace's disconnect takes the agent
    offline (there is no separate presence timer)."""
    from tests.servers import login

    with custom_server(database, tmp_path / "server.log", PRESENCE_TIMEOUT_SECONDS="3") as srv:
        jwt = login(srv, admin.api_token)
        api = srv.api(jwt)
        room = api.post("/api/v1/rooms", {"slug": f"hb-{uuid.uuid4().hex[:8]}"})
        assert room.status == 201
        room_id = room.body["id"]

        async def scenario() -> None:
            url = srv.base_url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
            async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
                opened = json.loads((await ws.receive_str())[1:])
                assert opened["pingInterval"] == 1000 and opened["pingTimeout"] == 2000
                await ws.send_str("40/agents," + json.dumps({"token": jwt}))
                while not (await ws.receive_str()).startswith("40/agents,"):
                    pass
                assert (await blocking(_online, api, room_id))[admin.id] is True
                # From here on the client reads nothing and answers no ping.
                deadline = time.monotonic() + 30
                while (await blocking(_online, api, room_id))[admin.id]:
                    assert time.monotonic() < deadline, "still online 30s after going silent"
                    await asyncio.sleep(0.25)

        run(scenario())
