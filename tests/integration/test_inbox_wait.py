"""GET /api/v1/inbox?wait=<s>: the long poll of an agent without a socket. It answers at once
when something is unread, else waits for a message by another agent in one of the caller's
rooms (or one mentioning it) and answers the inbox as it then is; the caller's own posts wake
nothing; an empty inbox after about ``wait`` seconds otherwise. Timings are asserted loosely."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.helpers import Api, Response
from tests.integration.test_long_poll import post, room_of_two, timed
from tests.servers import AgentCtx

EMPTY = {"rooms": [], "totalUnread": 0}


def inbox(api: Api, wait: float) -> Response:
    return api.get("/api/v1/inbox", params={"wait": wait})


def read_all(agent: AgentCtx, room: dict[str, Any]) -> None:
    last = agent.api.get(f"/api/v1/rooms/{room['id']}").body["lastSeq"]
    resp = agent.api.put(f"/api/v1/rooms/{room['id']}/read", {"seq": last})
    assert resp.status == 200, resp.text


def test_something_unread_is_answered_at_once(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, Any]]
) -> None:
    reader, writer, room = room_of_two(make_agent, make_room)
    posted = post(writer, room, "already here")
    resp, elapsed = timed(lambda: inbox(reader.api, 30))
    assert resp.status == 200, resp.text
    assert [e["lastMessage"]["id"] for e in resp.body["rooms"]] == [posted["id"]]
    assert resp.body["totalUnread"] == 1
    assert elapsed < 10, elapsed


def test_a_wait_answers_when_another_agent_posts_in_one_of_the_callers_rooms(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, Any]]
) -> None:
    reader, writer, room = room_of_two(make_agent, make_room)
    post(writer, room, "old news")
    read_all(reader, room)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(inbox, reader.api, 30)
        time.sleep(0.5)
        assert not waiting.done()  # nothing unread: it waits
        posted = post(writer, room, "news")
        resp = waiting.result(timeout=30)
        elapsed = time.monotonic() - started
    assert resp.status == 200, resp.text
    assert [e["room"]["id"] for e in resp.body["rooms"]] == [room["id"]]
    assert resp.body["rooms"][0]["lastMessage"]["id"] == posted["id"]
    assert resp.body["totalUnread"] == 1
    assert elapsed < 15, f"answered after {elapsed:.1f}s, far from at once"


def test_the_callers_own_post_wakes_nothing_and_the_wait_times_out_empty(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, Any]]
) -> None:
    reader, _writer, room = room_of_two(make_agent, make_room)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        waiting = pool.submit(inbox, reader.api, 2)
        time.sleep(0.3)
        post(reader, room, "talking to myself")
        resp = waiting.result(timeout=30)
        elapsed = time.monotonic() - started
    assert resp.status == 200, resp.text
    assert resp.body == EMPTY
    assert 1.8 <= elapsed < 12, elapsed


def test_a_post_in_a_room_the_caller_is_not_in_wakes_nothing(
    make_agent: Callable[..., AgentCtx], make_room: Callable[..., dict[str, Any]]
) -> None:
    reader = make_agent()
    _owner, writer, elsewhere = room_of_two(make_agent, make_room)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(inbox, reader.api, 1.5)
        time.sleep(0.3)
        post(writer, elsewhere, "not for the reader")
        resp = waiting.result(timeout=30)
    assert resp.status == 200, resp.text
    assert resp.body == EMPTY


@pytest.mark.parametrize("wait", ["-1", "61", "soon", "nan", "1e9"])
def test_a_bad_wait_is_a_400_naming_wait(make_agent: Callable[..., AgentCtx], wait: str) -> None:
    resp = make_agent().api.get("/api/v1/inbox", params={"wait": wait})
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert "wait" in resp.body["error"]["details"]
