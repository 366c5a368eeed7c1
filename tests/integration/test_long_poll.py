"""GET /api/v1/rooms/{id}/messages?after=<seq>&wait=<s>: a long poll over plain HTTP. It
answers as soon as a message arrives, an empty page when none does, at once when something is
already there; refuses bad input and non-members before waiting; is bounded by MAX_WAITERS
(503); lets go of its waiter when the client leaves; holds no database connection while it
waits; and answers at once (empty) when the server shuts down. Timings are asserted loosely:
the machines running this are noisy."""

from __future__ import annotations

import signal
import socket
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Api, Response
from tests.integration.test_metrics import scrape, value
from tests.realtime_support import custom_server
from tests.servers import AgentCtx, ScratchDatabase, Server, start_server, stop_server

GAUGE = "agenthub_waiting_requests"


def messages_path(room: dict[str, Any]) -> str:
    return f"/api/v1/rooms/{room['id']}/messages"


def poll(api: Api, room: dict[str, Any], after: int, wait: float, **params: Any) -> Response:
    return api.get(messages_path(room), params={"after": after, "wait": wait, **params})


def timed(call: Callable[[], Response]) -> tuple[Response, float]:
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


def room_of_two(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, Any]]
) -> tuple[AgentCtx, AgentCtx, dict[str, Any]]:
    owner, other = make_agent(), make_agent()
    room = make_room(owner)
    added = owner.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": other.id})
    assert added.status == 201, added.text
    return owner, other, room


def post(agent: AgentCtx, room: dict[str, Any], body: str, **fields: Any) -> dict[str, Any]:
    resp = agent.api.post(messages_path(room), {"body": body, **fields})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def wait_for_gauge(srv: Server, expected: float, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while (seen := value(scrape(srv), GAUGE)) != expected:
        assert time.monotonic() < deadline, f"{GAUGE} stayed {seen}, expected {expected}"
        time.sleep(0.05)


def test_a_wait_answers_as_soon_as_another_agent_posts(make_agent, make_room):
    reader, writer, room = room_of_two(make_agent, make_room)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(poll, reader.api, room, 0, 30)
        time.sleep(0.5)
        assert not waiting.done()  # nothing after seq 0 yet: it waits
        posted = post(writer, room, "wake up")
        resp = waiting.result(timeout=30)
        elapsed = time.monotonic() - started
    assert resp.status == 200, resp.text
    assert [m["id"] for m in resp.body["messages"]] == [posted["id"]]
    assert resp.body["hasMore"] is False
    assert elapsed < 15, f"answered after {elapsed:.1f}s, far from at once"


def test_a_wait_that_times_out_is_an_empty_200_after_about_wait_seconds(make_agent, make_room):
    reader, writer, room = room_of_two(make_agent, make_room)
    post(writer, room, "seq 1")
    resp, elapsed = timed(lambda: poll(reader.api, room, 1, 1.5))
    assert resp.status == 200, resp.text
    assert resp.body == {"messages": [], "nextCursor": None, "hasMore": False}
    assert 1.3 <= elapsed < 10, elapsed


def test_a_message_already_after_seq_is_answered_at_once(make_agent, make_room):
    reader, writer, room = room_of_two(make_agent, make_room)
    first = post(writer, room, "seq 1")
    second = post(writer, room, "seq 2")
    resp, elapsed = timed(lambda: poll(reader.api, room, 0, 30))
    assert resp.status == 200, resp.text
    assert [m["id"] for m in resp.body["messages"]] == [first["id"], second["id"]]
    assert elapsed < 10, elapsed
    by_slug = reader.api.get(
        f"/api/v1/rooms/{room['slug']}/messages", params={"after": 1, "wait": "2.5"}
    )
    assert [m["id"] for m in by_slug.body["messages"]] == [second["id"]]


def test_a_wait_with_a_kind_filter_ignores_other_kinds_until_its_own_arrives(make_agent, make_room):
    reader, writer, room = room_of_two(make_agent, make_room)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, reader.api, room, 0, 30, kind="task")
        time.sleep(0.3)
        post(writer, room, "just text")
        time.sleep(0.5)
        assert not waiting.done()  # a text message is not a task: still waiting
        task = post(writer, room, "do it", kind="task")
        resp = waiting.result(timeout=30)
    assert resp.status == 200, resp.text
    assert [m["id"] for m in resp.body["messages"]] == [task["id"]]


def test_a_wait_on_a_thread_answers_with_the_reply(make_agent, make_room):
    reader, writer, room = room_of_two(make_agent, make_room)
    root = post(writer, room, "root")
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, reader.api, room, root["seq"], 30, thread=root["seq"])
        time.sleep(0.3)
        post(writer, room, "elsewhere")
        reply = post(writer, room, "in the thread", replyTo=root["seq"])
        resp = waiting.result(timeout=30)
    assert [m["id"] for m in resp.body["messages"]] == [reply["id"]]


@pytest.mark.parametrize("wait", ["abc", "-1", "60.5", "61", "1e999", "nan", "inf", "0x10", "5s"])
def test_a_bad_wait_is_a_400_naming_wait(make_agent, make_room, wait):
    reader, _, room = room_of_two(make_agent, make_room)
    resp, elapsed = timed(
        lambda: reader.api.get(messages_path(room), params={"after": 0, "wait": wait})
    )
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert "wait" in resp.body["error"]["details"]
    assert elapsed < 10


def test_wait_without_after_is_a_400_naming_wait(make_agent, make_room):
    reader, _, room = room_of_two(make_agent, make_room)
    resp = reader.api.get(messages_path(room), params={"wait": 5})
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert resp.body["error"]["details"] == {"wait": ["only with after"]}
    # wait=0 is no wait: the usual listing, with or without after.
    assert reader.api.get(messages_path(room), params={"wait": 0}).status == 200


def test_a_non_member_is_refused_without_waiting(make_agent, make_room):
    owner, outsider = make_agent(), make_agent()
    public, private = make_room(owner), make_room(owner, visibility="private")
    resp, elapsed = timed(lambda: poll(outsider.api, public, 0, 30))
    assert (resp.status, resp.error_code()) == (403, "forbidden")
    assert elapsed < 10
    resp, elapsed = timed(lambda: poll(outsider.api, private, 0, 30))
    assert (resp.status, resp.error_code()) == (404, "not_found")
    assert elapsed < 10


def port_of(srv: Server) -> int:
    return int(urllib.parse.urlsplit(srv.base_url).port or 0)


def open_wait(
    srv: Server, jwt: str, room: dict[str, Any], after: int, wait: float
) -> socket.socket:
    """A long poll sent on a raw socket the test can close without reading the answer."""
    sock = socket.create_connection(("127.0.0.1", port_of(srv)), timeout=30)
    path = f"{messages_path(room)}?after={after}&wait={wait}"
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {jwt}\r\n\r\n".encode())
    return sock


def test_max_waiters_bound_disconnects_and_one_rate_limit_token_per_wait(
    database: ScratchDatabase, tmp_path: Path, make_agent, make_room
):
    """MAX_WAITERS=2: a third wait is a 503 too_many_waiters with Retry-After; a client that
    closes its connection mid-wait gives its slot back (the gauge goes down, the request is
    counted as 499, nothing answered); a wait is one request for the rate limiter."""
    reader, writer, room = room_of_two(make_agent, make_room)
    env = {"MAX_WAITERS": "2", "RATE_LIMIT_AGENT_PER_MINUTE": "4"}
    with custom_server(database, tmp_path / "waiters.log", **env) as srv:
        # Two long polls on raw sockets, left waiting.
        first = open_wait(srv, reader.jwt, room, 0, 30)
        second = open_wait(srv, writer.jwt, room, 0, 30)
        wait_for_gauge(srv, 2)
        third = poll(srv.api(make_agent().jwt), room, 0, 5)
        assert (third.status, third.error_code()) == (503, "too_many_waiters")
        assert third.headers["retry-after"] == "1"
        assert third.body["error"]["details"]["limit"] == 2
        # The clients go away: their waiters are dropped, nothing is written to them.
        first.close()
        second.close()
        wait_for_gauge(srv, 0)
        gone = {"method": "GET", "route": "/api/v1/rooms/{id}/messages", "status_code": "499"}
        assert value(scrape(srv), "agenthub_http_requests_total", gone) == 2

        # Rate limit: 4 requests a minute for this agent; a wait woken by nothing it wants
        # (text while it waits for a task), then timing out, is one of them.
        limited = make_agent()
        added = reader.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": limited.id})
        assert added.status == 201, added.text
        api = srv.api(limited.jwt)
        with ThreadPoolExecutor(1) as pool:
            waiting: Future[Response] = pool.submit(poll, api, room, 0, 2, kind="task")
            time.sleep(0.3)
            for i in range(3):
                post(writer, room, f"text {i}")
            assert waiting.result(timeout=30).status == 200
        statuses = [api.get(messages_path(room)).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
    log = srv.log_text()
    assert "Traceback" not in log, log[-3000:]


def test_waiters_hold_no_database_connection_and_shutdown_answers_them_at_once(
    database: ScratchDatabase, tmp_path: Path, make_agent, make_room
):
    """DB_POOL_MAX=2 and 7 waiting requests: a normal request is still answered at once (no
    waiter holds a connection). SIGTERM: every waiting request is answered 200, empty, at
    once, and the server exits 0 well before the waits' deadline."""
    reader, writer, room = room_of_two(make_agent, make_room)
    srv = start_server(dict(database.env, DB_POOL_MAX="2"), tmp_path / "pool.log")
    try:
        with ThreadPoolExecutor(7) as pool:
            waits = [pool.submit(poll, srv.api(reader.jwt), room, 0, 60) for _ in range(7)]
            wait_for_gauge(srv, 7)
            resp, elapsed = timed(lambda: srv.api(writer.jwt).get(messages_path(room)))
            assert resp.status == 200, resp.text
            assert elapsed < 3, f"a plain read took {elapsed:.1f}s beside 7 waiters"
            assert not any(w.done() for w in waits)

            started = time.monotonic()
            srv.process.send_signal(signal.SIGTERM)
            answers = [w.result(timeout=30) for w in waits]
            answered_in = time.monotonic() - started
            assert srv.process.wait(timeout=30) == 0, srv.log_text()[-3000:]
        assert [a.status for a in answers] == [200] * 7
        assert all(
            a.body == {"messages": [], "nextCursor": None, "hasMore": False} for a in answers
        )
        assert answered_in < 10, f"waiters answered {answered_in:.1f}s after SIGTERM"
        log = srv.log_text()
        assert "Traceback" not in log and "still going at the drain deadline" not in log, log
    finally:
        if srv.process.poll() is None:
            stop_server(srv)
