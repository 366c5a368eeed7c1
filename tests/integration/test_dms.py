"""Direct messages (issue 11, §5): POST /api/v1/dms, the DM room's fixed membership, and
GET /api/v1/rooms?kind=."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from typing import Any

from agenthub.domain import SLUG_RE, looks_like_uuid
from tests.realtime_support import WAIT, Socket, blocking, error_code, ok, run


def _dm(agent, other: str):
    return agent.api.post("/api/v1/dms", {"agentId": other})


def _open(agent, other) -> dict[str, Any]:
    resp = _dm(agent, other.name)
    assert resp.status in (200, 201), resp.text
    return dict(resp.body)


def _member_ids(api, room_id: object) -> set[str]:
    resp = api.get(f"/api/v1/rooms/{room_id}/members")
    assert resp.status == 200, resp.text
    return {m["agentId"] for m in resp.body["members"]}


def _dm_created(admin, room_id: object) -> list[dict[str, Any]]:
    events = admin.api.get("/api/v1/audit", params={"type": "dm-created", "limit": 200})
    assert events.status == 200, events.text
    return [e for e in events.body["events"] if e["payload"]["roomId"] == room_id]


def test_a_dm_is_created_once_and_found_again_from_either_side(admin, make_agent):
    alice, bob = make_agent(), make_agent()
    created = _dm(alice, bob.name)
    assert created.status == 201, created.text
    room = created.body
    assert room["kind"] == "dm" and room["visibility"] == "private"
    assert room["member"] is True and room["archived"] is False
    assert room["createdBy"] == alice.id
    assert room["name"] == ", ".join(sorted((alice.name, bob.name)))
    assert SLUG_RE.match(room["slug"]) and not looks_like_uuid(room["slug"])
    assert room["slug"].startswith("dm-")
    assert created.headers["location"] == f"/api/v1/rooms/{room['id']}"

    again = _dm(alice, bob.id)
    assert again.status == 200 and again.body == room
    from_bob = _dm(bob, alice.name)
    assert from_bob.status == 200, from_bob.text
    assert from_bob.body["id"] == room["id"] and from_bob.body["member"] is True

    assert _member_ids(alice.api, room["id"]) == {alice.id, bob.id}
    assert bob.api.get(f"/api/v1/rooms/{room['slug']}").body["id"] == room["id"]
    [event] = _dm_created(admin, room["id"])
    assert event["agentId"] == alice.id
    assert event["payload"]["slug"] == room["slug"]
    assert sorted(event["payload"]["memberIds"]) == sorted((alice.id, bob.id))

    metrics = alice.api.with_token(None).get("/metrics").text.splitlines()
    counted = [line for line in metrics if line.startswith("agenthub_http_requests_total{")]
    assert any('route="/api/v1/dms"' in line and 'status_code="201"' in line for line in counted)

    # Both can talk in it, by id or by slug.
    posted = bob.api.post(f"/api/v1/rooms/{room['slug']}/messages", {"body": "hi @" + alice.name})
    assert posted.status == 201, posted.text
    assert posted.body["mentions"] == [alice.id]
    read = alice.api.get(f"/api/v1/rooms/{room['id']}/messages")
    assert [m["body"] for m in read.body["messages"]] == [f"hi @{alice.name}"]


def test_each_pair_has_its_own_dm(make_agent):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    ab, ac, bc = _open(alice, bob), _open(alice, carol), _open(bob, carol)
    assert len({ab["id"], ac["id"], bc["id"]}) == 3
    assert len({ab["slug"], ac["slug"], bc["slug"]}) == 3
    assert _member_ids(carol.api, bc["id"]) == {bob.id, carol.id}


def test_bad_dm_requests_are_refused_and_store_nothing(make_agent, table_counts):
    alice = make_agent()
    before = table_counts()
    for target in (alice.name, alice.id, alice.id.replace("-", "").upper(), "me"):
        resp = _dm(alice, target)
        assert resp.status == 400, (target, resp.text)
        assert resp.error_code() == "validation_failed"
        assert "agentId" in resp.body["error"]["details"]
    for target in ("nobody-by-this-name", str(uuid.uuid4())):
        resp = _dm(alice, target)
        assert resp.status == 404, (target, resp.text)
        assert resp.error_code() == "not_found"
    for body in ({}, {"agentId": "Not A Name"}, {"agentId": 5}, {"agentId": "x", "extra": 1}):
        resp = alice.api.post("/api/v1/dms", body)
        assert resp.status == 400, (body, resp.text)
    assert alice.api.post("/api/v1/dms", raw=b"{not json").status == 400
    assert alice.api.with_token(None).post("/api/v1/dms", {"agentId": "x"}).status == 401
    assert table_counts() == before


def test_a_new_dm_with_a_disabled_agent_is_refused_an_old_one_is_found(
    admin, make_agent, table_counts
):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    old = _open(alice, carol)
    for agent in (bob, carol):
        disabled = admin.api.patch(f"/api/v1/agents/{agent.id}", {"disabled": True})
        assert disabled.status == 200, disabled.text

    before = table_counts()
    refused = _dm(alice, bob.name)
    assert refused.status == 409, refused.text
    assert refused.error_code() == "conflict" and "agentId" in refused.body["error"]["details"]
    assert table_counts() == before

    found = _dm(alice, carol.name)
    assert found.status == 200 and found.body["id"] == old["id"]


def test_nobody_joins_leaves_or_is_added_to_a_dm_and_it_cannot_be_archived(
    admin, make_agent, table_counts
):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    dm = _open(alice, bob)
    path = f"/api/v1/rooms/{dm['id']}"
    before = table_counts()
    refusals = [
        (alice, "POST", f"{path}/members", {"agentId": carol.id}),
        (alice, "POST", f"{path}/members", None),  # the caller "joins" again
        (alice, "POST", f"{path}/members", {"agentId": bob.name}),  # already a member
        (bob, "DELETE", f"{path}/members/me", None),
        (alice, "DELETE", f"{path}/members/{bob.id}", None),
        (admin, "POST", f"{path}/members", {"agentId": carol.name}),
        (admin, "POST", f"{path}/members", None),
        (admin, "DELETE", f"{path}/members/{alice.name}", None),
        (alice, "POST", f"{path}/archive", None),  # its creator
        (bob, "POST", f"{path}/archive", None),
        (admin, "POST", f"{path}/archive", None),
        (admin, "POST", f"{path}/unarchive", None),
    ]
    for agent, method, url, body in refusals:
        resp = agent.api.request(method, url, body)
        assert resp.status == 409, (agent.name, method, url, resp.text)
        assert resp.error_code() == "conflict"
    assert table_counts() == before
    assert _member_ids(admin.api, dm["id"]) == {alice.id, bob.id}
    assert alice.api.get(path).body["archived"] is False


def test_a_dm_is_invisible_to_other_agents(admin, make_agent):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    dm = _open(alice, bob)
    for ref in (dm["id"], dm["slug"]):
        path = f"/api/v1/rooms/{ref}"
        for method, url, body in (
            ("GET", path, None),
            ("GET", f"{path}/members", None),
            ("GET", f"{path}/messages", None),
            ("POST", f"{path}/messages", {"body": "let me in"}),
            ("POST", f"{path}/members", None),
            ("DELETE", f"{path}/members/{alice.id}", None),
            ("POST", f"{path}/archive", None),
            ("PATCH", path, {"topic": "mine"}),
        ):
            resp = carol.api.request(method, url, body)
            assert resp.status == 404, (method, url, resp.text)
            assert resp.error_code() == "not_found"
    listed = carol.api.get("/api/v1/rooms").body["rooms"]
    assert dm["id"] not in {r["id"] for r in listed}
    # Admins see a DM like any private room (its existence and members), not its messages.
    seen = admin.api.get(f"/api/v1/rooms/{dm['id']}")
    assert seen.status == 200 and seen.body["member"] is False
    assert admin.api.get(f"/api/v1/rooms/{dm['id']}/messages").status == 403


def test_rooms_are_listed_by_kind(make_agent, make_room):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    dm = _open(alice, bob)
    other_dm = _open(bob, carol)
    room = make_room(alice)

    def listed(agent, **params: str) -> dict[str, str]:
        resp = agent.api.get("/api/v1/rooms", params=params)
        assert resp.status == 200, resp.text
        return {r["id"]: r["kind"] for r in resp.body["rooms"]}

    everything = listed(alice)
    assert everything[dm["id"]] == "dm" and everything[room["id"]] == "room"
    dms = listed(alice, kind="dm")
    assert set(dms.values()) == {"dm"} and dm["id"] in dms and other_dm["id"] not in dms
    rooms = listed(alice, kind="room")
    assert set(rooms.values()) == {"room"} and room["id"] in rooms
    assert set(dms) | set(rooms) == set(everything)
    for bad in ("", "DM", "dms", "all", "room,dm", "x" * 600):
        resp = alice.api.get("/api/v1/rooms", params={"kind": bad})
        assert resp.status == 400, (bad, resp.text)
        assert resp.error_code() == "validation_failed" and "kind" in resp.body["error"]["details"]


def _lock_waiters(sql) -> int:
    """Backends of this test database waiting for a lock."""
    rows = sql(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    return int(str(rows[0][0]))


def test_both_sides_opening_the_dm_at_once_get_one_room(admin, make_agent, database, sql):
    """The two requests are held at the rooms insert (a table lock they both wait for) and let
    go together, so both try to insert the same DM: the unique dm_key decides, the second
    insert waits for the first to commit and then finds its room."""
    alice, bob = make_agent(), make_agent()
    blocker = database.connect()
    blocker.autocommit = False
    pool = concurrent.futures.ThreadPoolExecutor(2)
    try:
        with blocker.cursor() as cur:
            # Taken by the test, conflicts with every INSERT into rooms; SELECTs still run.
            cur.execute("LOCK TABLE rooms IN SHARE ROW EXCLUSIVE MODE")
        calls = [pool.submit(_dm, alice, bob.name), pool.submit(_dm, bob, alice.id)]
        deadline = time.monotonic() + WAIT
        while _lock_waiters(sql) < 2:
            assert time.monotonic() < deadline, "both inserts should be waiting for the lock"
            assert not any(c.done() for c in calls), [c.result().text for c in calls if c.done()]
            time.sleep(0.05)
        blocker.rollback()
        answers = [c.result(timeout=WAIT) for c in calls]
    finally:
        blocker.rollback()
        blocker.close()
        pool.shutdown()
    assert sorted(a.status for a in answers) == [200, 201], [a.text for a in answers]
    assert answers[0].body["id"] == answers[1].body["id"]
    room_id = answers[0].body["id"]
    key = ":".join(sorted((alice.id, bob.id)))
    assert sql("SELECT id::text FROM rooms WHERE dm_key = %s", key) == [(room_id,)]
    assert _member_ids(alice.api, room_id) == {alice.id, bob.id}
    assert len(_dm_created(admin, room_id)) == 1


def test_many_pairs_opening_their_dms_at_once_get_one_room_each(make_agent, sql):
    pairs = [(make_agent(), make_agent()) for _ in range(6)]
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        calls = [(pool.submit(_dm, a, b.name), pool.submit(_dm, b, a.name)) for a, b in pairs]
        answers = [(x.result(timeout=WAIT), y.result(timeout=WAIT)) for x, y in calls]
    for (a, b), (x, y) in zip(pairs, answers, strict=True):
        assert sorted((x.status, y.status)) == [200, 201], (x.text, y.text)
        assert x.body["id"] == y.body["id"]
        key = ":".join(sorted((a.id, b.id)))
        assert sql("SELECT count(*) FROM rooms WHERE dm_key = %s", key) == [(1,)]


def test_a_new_dm_reaches_both_agents_live_sockets(server, make_agent):
    alice, bob = make_agent(), make_agent()

    async def scenario() -> None:
        a, b = Socket(server.base_url), Socket(server.base_url)
        try:
            await a.connect(alice.jwt)
            await b.connect(bob.jwt)
            created = await blocking(_dm, alice, bob.name)
            assert created.status == 201, created.text
            dm = created.body
            # Sockets connected before the DM existed are in it once the 201 is out, and each
            # hears its own agent come online there (how a client learns of a new room).
            for agent, agent_socket in ((alice, a), (bob, b)):
                online = {"roomId": dm["id"], "agentId": agent.id, "status": "online"}
                await agent_socket.wait_for("presence:update", online.__eq__)
            sent = ok(await a.call("message:send", {"roomId": dm["slug"], "body": "psst"}))
            assert sent["message"]["roomId"] == dm["id"]
            await b.wait_until(lambda: b.bodies(dm["id"]) == ["psst"])
            await a.wait_until(lambda: a.bodies(dm["id"]) == ["psst"])
            posted = await blocking(
                bob.api.post, f"/api/v1/rooms/{dm['id']}/messages", {"body": "yes?"}
            )
            assert posted.status == 201, posted.text
            await a.wait_until(lambda: a.bodies(dm["id"]) == ["psst", "yes?"])

            # Over the socket, too, a DM's membership does not change.
            for agent_socket in (a, b):
                for event in ("room:join", "room:leave"):
                    ack = await agent_socket.call(event, {"roomId": dm["id"]})
                    assert error_code(ack) == "conflict", (event, ack)
            ok(await a.call("message:send", {"roomId": dm["id"], "body": "still here"}))
            await b.wait_until(lambda: b.bodies(dm["id"])[-1:] == ["still here"])
        finally:
            await a.close()
            await b.close()

        # A socket connecting later is in the DM from the start.
        c = Socket(server.base_url)
        try:
            await c.connect(bob.jwt)
            [hello] = c.events["connected"]
            assert dm["id"] in {r["id"] for r in hello["rooms"]}
        finally:
            await c.close()

    run(scenario())


def test_the_openapi_document_describes_dms_and_the_kind_filter(server):
    doc = server.api().get("/api/v1/openapi.json").body
    [kind] = doc["paths"]["/api/v1/rooms"]["get"]["parameters"]
    assert kind["name"] == "kind" and kind["in"] == "query" and not kind["required"]
    assert kind["schema"]["enum"] == ["room", "dm"]
    open_dm = doc["paths"]["/api/v1/dms"]["post"]
    assert {"200", "201", "400", "404", "409"} <= set(open_dm["responses"])
    request = doc["components"]["schemas"]["CreateDmRequest"]
    assert request["required"] == ["agentId"] and request["additionalProperties"] is False
