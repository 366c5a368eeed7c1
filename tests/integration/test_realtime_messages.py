"""message:send, message:new and room:sync over real sockets: acked only when stored, fanned
out to every socket in the room, errors in the ack, gapless catch-up after a reconnect."""

from __future__ import annotations

import asyncio
import functools
import uuid

import pytest

from tests.realtime_support import CatchUpClient, Socket, blocking, error_code, ok, run


def _heard_at_least(sock: Socket, count: int) -> bool:
    return len(sock.events["message:new"]) >= count


def _messages(api, room_id: str) -> list[dict[str, object]]:
    resp = api.get(f"/api/v1/rooms/{room_id}/messages", params={"after": 0, "limit": 200})
    assert resp.status == 200, resp.text
    return list(resp.body["messages"])


def test_send_is_acked_after_commit_and_reaches_every_socket_in_the_room(
    server, make_agent, make_room
):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    assert alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id}).status == 201
    elsewhere = make_room(carol)

    async def scenario() -> None:
        a1, a2, b, c = (Socket(server.base_url) for _ in range(4))
        try:
            await a1.connect(alice.jwt)
            await a2.connect(alice.jwt)
            await b.connect(bob.jwt)
            await c.connect(carol.jwt)
            ack = ok(await a1.call("message:send", {"roomId": room["id"], "body": "hello"}))
            message = ack["message"]
            assert ack["created"] is True
            assert message["seq"] == 1 and message["body"] == "hello"
            assert message["senderId"] == alice.id and message["roomId"] == room["id"]
            # Acked means stored: another connection reads it back at once.
            stored = await blocking(_messages, bob.api, room["id"])
            assert [m["id"] for m in stored] == [message["id"]]
            for sock in (a1, a2, b):
                got = await sock.wait_for("message:new", lambda m: m["id"] == message["id"])
                assert got == message
            # A message posted over REST is broadcast the same way.
            posted = await blocking(
                bob.api.post, f"/api/v1/rooms/{room['id']}/messages", {"body": "via rest"}
            )
            assert posted.status == 201
            for sock in (a1, a2, b):
                got = await sock.wait_for("message:new", lambda m: m["body"] == "via rest")
                assert got == posted.body and got["seq"] == 2
            # carol is not a member: a message in her own room arrives, alice's never did.
            ok(await c.call("message:send", {"roomId": elsewhere["id"], "body": "mine"}))
            await c.wait_for("message:new", lambda m: m["body"] == "mine")
            assert c.bodies(room["id"]) == []
        finally:
            for sock in (a1, a2, b, c):
                await sock.close()

    run(scenario())


def test_non_member_send_is_refused_and_stores_nothing(server, make_agent, make_room, table_counts):
    alice, mallory = make_agent(), make_agent()
    public = make_room(alice)
    private = make_room(alice, visibility="private")

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(mallory.jwt)
            before = await blocking(table_counts)
            ack = await sock.call("message:send", {"roomId": public["id"], "body": "hi"})
            assert error_code(ack) == "forbidden"
            ack = await sock.call("message:send", {"roomId": private["id"], "body": "hi"})
            assert error_code(ack) == "not_found"
            ack = await sock.call("message:send", {"roomId": str(uuid.uuid4()), "body": "hi"})
            assert error_code(ack) == "not_found"
            assert await blocking(table_counts) == before
        finally:
            await sock.close()

    run(scenario())


def test_retry_with_client_msg_id_returns_the_stored_message_once(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            payload = {"roomId": room["id"], "body": "once", "clientMsgId": "retry-1"}
            first = ok(await sock.call("message:send", payload))
            second = ok(await sock.call("message:send", payload))
            assert first["created"] is True and second["created"] is False
            assert second["message"] == first["message"]
            # A later message proves the broadcast for the retry would have arrived by now.
            ok(await sock.call("message:send", {"roomId": room["id"], "body": "after"}))
            await sock.wait_for("message:new", lambda m: m["body"] == "after")
            assert sock.bodies(room["id"]) == ["once", "after"]
        finally:
            await sock.close()

    run(scenario())


BAD_SEND_PAYLOADS = [
    pytest.param("just a string", "validation_failed", id="string"),
    pytest.param(42, "validation_failed", id="number"),
    pytest.param(["roomId", "body"], "validation_failed", id="list"),
    pytest.param(b"\x00\x01binary", "validation_failed", id="binary"),
    pytest.param({}, "validation_failed", id="empty-object"),
    pytest.param({"body": "x"}, "validation_failed", id="missing-room"),
    pytest.param({"roomId": "ROOM"}, "validation_failed", id="missing-body"),
    pytest.param({"roomId": "Not A Room", "body": "x"}, "validation_failed", id="bad-ref"),
    pytest.param({"roomId": "no-such-room", "body": "x"}, "not_found", id="unknown-slug"),
    pytest.param({"roomId": "ROOM", "body": 5}, "validation_failed", id="body-number"),
    pytest.param({"roomId": "ROOM", "body": None}, "validation_failed", id="body-null"),
    pytest.param({"roomId": "ROOM", "body": "x", "extra": 1}, "validation_failed", id="unknown"),
    pytest.param({"roomId": "ROOM", "body": "   "}, "validation_failed", id="blank-body"),
    pytest.param({"roomId": "ROOM", "body": "a\x00b"}, "validation_failed", id="nul"),
    pytest.param({"roomId": "ROOM", "body": "x", "clientMsgId": 7}, "validation_failed", id="cmid"),
    pytest.param({"roomId": "ROOM", "body": "x" * 16001}, "payload_too_large", id="too-long"),
    pytest.param({"roomId": "ROOM", "body": "y" * 900_000}, "payload_too_large", id="huge"),
]


@pytest.mark.parametrize(("payload", "code"), BAD_SEND_PAYLOADS)
def test_bad_send_payload_gets_an_error_ack_and_the_socket_lives_on(
    server, make_agent, make_room, table_counts, payload, code
):
    alice = make_agent()
    room = make_room(alice)
    if isinstance(payload, dict) and payload.get("roomId") == "ROOM":
        payload = dict(payload, roomId=room["id"])

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            before = await blocking(table_counts)
            ack = await sock.call("message:send", payload)
            assert error_code(ack) == code
            if code == "validation_failed" and isinstance(payload, dict) and payload:
                assert isinstance(ack["error"]["details"], dict)
            assert await blocking(table_counts) == before
            # Same socket, still usable.
            ok(await sock.call("message:send", {"roomId": room["id"], "body": "fine"}))
            assert not sock.disconnects
        finally:
            await sock.close()

    run(scenario())


def test_wrong_argument_counts_and_unknown_events_get_error_acks(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            no_args = await sock.emit_raw("message:send", None)
            assert error_code(no_args) == "validation_failed"
            two_args = await sock.emit_raw(
                "message:send", ({"roomId": room["id"], "body": "x"}, "extra")
            )
            assert error_code(two_args) == "validation_failed"
            assert two_args["error"]["details"] == {"payload": ["got 2 arguments"]}
            unknown = await sock.call("message:delete", {"roomId": room["id"]})
            assert error_code(unknown) == "validation_failed"
            (event_detail,) = unknown["error"]["details"]["event"]
            assert "message:send" in event_detail
            for event in ("room:join", "room:leave", "room:sync", "session:refresh"):
                assert error_code(await sock.call(event, "nope")) == "validation_failed", event
            assert await blocking(_messages, alice.api, room["id"]) == []
            ok(await sock.call("message:send", {"roomId": room["id"], "body": "still here"}))
        finally:
            await sock.close()

    run(scenario())


def test_frame_above_the_transport_limit_closes_only_that_socket(server, make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)

    async def scenario() -> None:
        big, bystander = Socket(server.base_url), Socket(server.base_url)
        try:
            await big.connect(alice.jwt)
            await bystander.connect(alice.jwt)
            # MAX_REQUEST_BYTES (1 MiB) is engine.io's maxPayload: a bigger frame is refused
            # at the transport, before any parsing, and the connection is closed.
            await big.client.emit(
                "message:send", {"roomId": room["id"], "body": "z" * 2_000_000}, namespace="/agents"
            )
            await big.wait_disconnected()
            ack = ok(await bystander.call("message:send", {"roomId": room["id"], "body": "ok"}))
            assert ack["message"]["seq"] == 1
        finally:
            await big.close()
            await bystander.close()

    run(scenario())


def test_sync_returns_missed_messages_in_seq_order(server, make_agent, make_room):
    alice, outsider = make_agent(), make_agent()
    room = make_room(alice)
    for i in range(1, 8):
        resp = alice.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": f"m{i}"})
        assert resp.status == 201

    async def scenario() -> None:
        sock, other = Socket(server.base_url), Socket(server.base_url)
        try:
            await sock.connect(alice.jwt)
            request = {"roomId": room["id"], "afterSeq": 2, "limit": 3}
            page = ok(await sock.call("room:sync", request))
            assert [m["seq"] for m in page["messages"]] == [3, 4, 5]
            assert page["hasMore"] is True and page["roomId"] == room["id"]
            rest = ok(await sock.call("room:sync", {"roomId": room["id"], "afterSeq": 5}))
            assert [m["body"] for m in rest["messages"]] == ["m6", "m7"]
            assert rest["hasMore"] is False
            empty = ok(await sock.call("room:sync", {"roomId": room["id"], "afterSeq": 7}))
            assert empty["messages"] == [] and empty["hasMore"] is False
            for bad in (
                {"roomId": room["id"]},
                {"roomId": room["id"], "afterSeq": -1},
                {"roomId": room["id"], "afterSeq": "3"},
                {"roomId": room["id"], "afterSeq": 2**63},
                {"roomId": room["id"], "afterSeq": 0, "limit": 0},
                {"roomId": room["id"], "afterSeq": 0, "limit": 100_000},
            ):
                assert error_code(await sock.call("room:sync", bad)) == "validation_failed", bad
            await other.connect(outsider.jwt)
            denied = await other.call("room:sync", {"roomId": room["id"], "afterSeq": 0})
            assert error_code(denied) == "forbidden"
        finally:
            await sock.close()
            await other.close()

    run(scenario())


def test_reconnect_after_forced_disconnect_loses_nothing_and_duplicates_nothing(
    server, make_agent, make_room
):
    """A receiver drops off (transport aborted, as on a network cut) while a sender keeps
    going; it reconnects while the sender is still sending, and with the documented recipe
    (live message:new + room:sync, deduplicated by seq) gets every message exactly once."""
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    assert alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id}).status == 201
    total = 120

    async def scenario() -> None:
        sender = Socket(server.base_url)
        receiver = CatchUpClient(server.base_url)
        sent: list[int] = []
        halfway = asyncio.Event()
        try:
            await sender.connect(alice.jwt)
            await receiver.connect(bob.jwt)

            async def send_all() -> None:
                for i in range(total):
                    payload = {"roomId": room["id"], "body": f"n{i}"}
                    ack = ok(await sender.call("message:send", payload))
                    sent.append(ack["message"]["seq"])
                    if i == total // 2:
                        halfway.set()
                    # Spread the sends over the disconnect and reconnect, and stay under the
                    # 30 events/s flood limit however fast the server acks.
                    await asyncio.sleep(0.04)

            sending = asyncio.create_task(send_all())
            await receiver.wait_delivered(room["id"], 10)
            assert receiver.socket is not None
            await receiver.socket.client.eio.disconnect(abort=True)  # the "network cut"
            seen_before_cut = receiver.last[room["id"]]
            await halfway.wait()
            await receiver.connect(bob.jwt)  # a new socket, same client state
            assert receiver.socket is not None
            reported = receiver.socket.events["connected"][-1]["rooms"][0]["lastSeq"]
            # The scenario really has all three parts: missed while away, caught up by sync,
            # and still arriving live after the reconnect.
            assert reported > seen_before_cut + 1
            assert receiver.syncs >= 1
            assert not sending.done() and reported < total
            await sending
            await receiver.wait_delivered(room["id"], total)
            delivered = [m["seq"] for m in receiver.delivered[room["id"]]]
            assert delivered == list(range(1, total + 1))
            assert sorted(sent) == delivered
            assert [m["body"] for m in receiver.delivered[room["id"]]] == [
                f"n{i}" for i in range(total)
            ]
        finally:
            await sender.close()
            await receiver.close()

    run(scenario())


def test_database_away_gives_unavailable_in_the_ack(fresh_database, tmp_path):
    """Sockets stay up while PostgreSQL refuses connections; events answer "unavailable",
    nothing is half-done, and service resumes when the database is back."""
    import os

    import psycopg2

    from tests.helpers import pg_params
    from tests.servers import login, run_cli, start_server, stop_server

    db = fresh_database()
    name = "dbaway-admin"
    run_cli(db.env, "agent", "create", "--name", name, "--role", "admin")
    token = run_cli(db.env, "token", "issue", "--agent", name).stdout.strip()
    srv = start_server(db.env, tmp_path / "server.log")
    # ALTER DATABASE … ALLOW_CONNECTIONS must come from a connection to another database.
    admin_conn = psycopg2.connect(**pg_params(os.environ.get("POSTGRES_ADMIN_DB", "postgres")))
    admin_conn.autocommit = True
    try:
        jwt = login(srv, token)
        room = srv.api(jwt).post("/api/v1/rooms", {"slug": "dbaway"})
        assert room.status == 201

        def cut(allow: bool) -> None:
            with admin_conn.cursor() as cur:
                cur.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS {str(allow).lower()}')
                if not allow:
                    cur.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()",
                        (db.name,),
                    )

        async def scenario() -> None:
            sock = Socket(srv.base_url)
            try:
                await sock.connect(jwt)
                await blocking(cut, False)
                for _ in range(2):  # the first attempt may meet a pooled connection that died
                    ack = await sock.call("message:send", {"roomId": room.body["id"], "body": "x"})
                    assert error_code(ack) == "unavailable"
                ack = await sock.call("room:sync", {"roomId": room.body["id"], "afterSeq": 0})
                assert error_code(ack) == "unavailable"
                await blocking(cut, True)
                ack = ok(await sock.call("message:send", {"roomId": room.body["id"], "body": "y"}))
                assert ack["message"]["seq"] == 1
            finally:
                await sock.close()

        run(scenario())
    finally:
        with admin_conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{db.name}" ALLOW_CONNECTIONS true')
        admin_conn.close()
        assert stop_server(srv) == 0, srv.log_text()[-3000:]
    assert "Traceback" not in srv.log_text()


def test_live_delivery_is_in_seq_order_under_concurrent_posts(server, make_agent, make_room):
    """Many posts into one room at once (REST, from threads, so they really overlap on the
    server): every socket hears message:new for each exactly once and in seq order, with no
    client-side reordering."""
    owner = make_agent()
    room = make_room(owner)
    senders = [make_agent() for _ in range(8)]
    for agent in senders:
        joined = agent.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": agent.id})
        assert joined.status == 201, joined.text
    per_sender = 30
    total = len(senders) * per_sender

    def post_all(agent) -> list[int]:
        seqs = []
        for i in range(per_sender):
            resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": f"m{i}"})
            assert resp.status == 201, resp.text
            seqs.append(resp.body["seq"])
        return seqs

    async def scenario() -> None:
        listeners = [Socket(server.base_url) for _ in range(2)]
        try:
            for sock in listeners:
                await sock.connect(owner.jwt)
            posted = await asyncio.gather(*(blocking(post_all, agent) for agent in senders))
            assert sorted(s for seqs in posted for s in seqs) == list(range(1, total + 1))
            for sock in listeners:
                heard_all = functools.partial(_heard_at_least, sock, total)
                await sock.wait_until(heard_all)
                heard = [m["seq"] for m in sock.events["message:new"]]
                assert heard == list(range(1, total + 1))
        finally:
            for sock in listeners:
                await sock.close()

    run(scenario())
