"""GET /api/v1/mentions (issue 11, §4): the messages that mention the caller across its rooms,
newest first by cursor or oldest first after a cursor, all or only unread, never from a room it
left, and the refusals."""

from __future__ import annotations

from typing import Any

import pytest

from agenthub import cursors
from tests.helpers import Response
from tests.servers import AgentCtx


def _post(agent: AgentCtx, room: dict[str, Any], body: str) -> dict[str, Any]:
    resp = agent.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": body})
    assert resp.status == 201, resp.text
    return dict(resp.body)


def _join(agent: AgentCtx, room: dict[str, Any]) -> None:
    assert agent.api.post(f"/api/v1/rooms/{room['id']}/members").status == 201


def _mentions(agent: AgentCtx, **params: Any) -> Response:
    return agent.api.get("/api/v1/mentions", params=params)


def _ids(resp: Response) -> list[str]:
    assert resp.status == 200, resp.text
    return [m["message"]["id"] for m in resp.body["mentions"]]


def _setup(make_agent: Any, make_room: Any) -> tuple[AgentCtx, AgentCtx, list[Any], list[Any]]:
    """bob is mentioned in two rooms (by name and by @room), alternately; one message of the
    first room mentions someone else and one is bob's own @room."""
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    rooms = [make_room(alice), make_room(alice)]
    for room in rooms:
        _join(bob, room)
        _join(carol, room)
    mentioned = [
        _post(alice, rooms[0], f"@{bob.name} first"),
        _post(alice, rooms[1], "@room second"),
    ]
    _post(alice, rooms[0], f"@{carol.name} not for bob")
    _post(bob, rooms[0], "@room bob's own: not a mention of bob")
    mentioned += [
        _post(carol, rooms[1], f"third, @{bob.name}"),
        _post(alice, rooms[0], f"fourth @{bob.name} @{bob.name}"),
    ]
    return alice, bob, rooms, mentioned


def test_newest_first_across_rooms_with_the_room(make_agent, make_room):
    _, bob, rooms, mentioned = _setup(make_agent, make_room)
    resp = _mentions(bob)
    assert _ids(resp) == [m["id"] for m in reversed(mentioned)]
    assert resp.body["nextCursor"] is None
    slugs = {r["id"]: r["slug"] for r in rooms}
    for item in resp.body["mentions"]:
        assert set(item) == {"message", "room"}
        room_id = item["message"]["roomId"]
        assert item["room"] == {"id": room_id, "slug": slugs[room_id]}
    assert resp.body["mentions"][0]["message"] == mentioned[-1] | {"replyCount": 0}


def test_pages_newest_first_by_cursor_and_oldest_first_after(make_agent, make_room):
    alice, bob, rooms, mentioned = _setup(make_agent, make_room)
    want = [m["id"] for m in mentioned]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = _mentions(bob, **params)
        seen += _ids(page)
        if page.body["nextCursor"] is None:
            break
        params["cursor"] = page.body["nextCursor"]
    assert seen == want[::-1]

    first = _mentions(bob, after="0", limit=3)
    assert _ids(first) == want[:3]
    rest = _mentions(bob, after=first.body["nextCursor"], limit=3)
    assert _ids(rest) == want[3:]
    # caught up: nothing, and a cursor to poll with that sees the next mention
    idle = _mentions(bob, after=rest.body["nextCursor"])
    assert _ids(idle) == [] and idle.body["nextCursor"]
    news = _post(alice, rooms[1], f"@{bob.name} news")
    assert _ids(_mentions(bob, after=idle.body["nextCursor"])) == [news["id"]]


def test_unread_keeps_what_is_after_the_read_marker(make_agent, make_room, sql):
    _, bob, rooms, mentioned = _setup(make_agent, make_room)
    assert _ids(_mentions(bob, unread="true")) == [m["id"] for m in reversed(mentioned)]
    assert _ids(_mentions(bob, unread="false")) == _ids(_mentions(bob))
    # bob has read the first room up to its last message (the read-marker API is §6's; the
    # column is what it moves)
    sql(
        "UPDATE room_members SET last_read_seq = (SELECT last_seq FROM rooms WHERE id = %s)"
        " WHERE room_id = %s AND agent_id = %s",
        rooms[0]["id"],
        rooms[0]["id"],
        bob.id,
    )
    in_second = [m["id"] for m in mentioned if m["roomId"] == rooms[1]["id"]]
    unread = _mentions(bob, unread="true")
    assert _ids(unread) == in_second[::-1]
    assert _ids(_mentions(bob, unread="true", after="0")) == in_second
    assert len(_ids(_mentions(bob))) == len(mentioned)  # the rest are still listed, as read
    # paging an unread listing
    one = _mentions(bob, unread="true", limit=1)
    assert _ids(one) == in_second[-1:]
    more = _mentions(bob, unread="true", limit=1, cursor=one.body["nextCursor"])
    assert _ids(more) == in_second[:1] and more.body["nextCursor"] is None


def test_a_room_left_is_no_longer_listed(make_agent, make_room):
    _, bob, rooms, mentioned = _setup(make_agent, make_room)
    assert bob.api.delete(f"/api/v1/rooms/{rooms[0]['id']}/members/me").status == 204
    in_second = [m["id"] for m in mentioned if m["roomId"] == rooms[1]["id"]]
    assert _ids(_mentions(bob)) == in_second[::-1]
    _join(bob, rooms[0])
    assert len(_ids(_mentions(bob))) == len(mentioned)


def test_an_agent_never_mentioned_gets_an_empty_list(make_agent):
    loner = make_agent()
    resp = _mentions(loner)
    assert resp.status == 200 and resp.body == {"mentions": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "nonsense"}, "cursor"),
        ({"after": "nonsense"}, "after"),
        ({"after": "1"}, "after"),
        ({"after": "0", "cursor": "x"}, "after"),
        ({"unread": "yes"}, "unread"),
        ({"unread": "1"}, "unread"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"limit": "x"}, "limit"),
    ],
)
def test_bad_parameters_are_400(make_agent, params, field):
    bob = make_agent()
    resp = _mentions(bob, **params)
    assert resp.status == 400, resp.text
    assert field in resp.body["error"]["details"], resp.text


def test_a_cursor_belongs_to_its_agent_and_its_listing(make_agent, make_room):
    _, bob, _, _ = _setup(make_agent, make_room)
    cursor = _mentions(bob, limit=1).body["nextCursor"]
    assert _mentions(bob, cursor=cursor).status == 200
    assert _mentions(bob, cursor=cursor, unread="true").status == 400
    assert _mentions(make_agent(), cursor=cursor).status == 400  # another agent's
    # a cursor only says where: whoever holds one reads their own mentions from there
    other = make_agent()
    forged = cursors.encode("mentions", f"{other.id}/all", 10**12)
    resp = _mentions(other, cursor=forged)
    assert resp.status == 200 and resp.body["mentions"] == []


def test_mentions_need_a_session(server):
    resp = server.api().get("/api/v1/mentions")
    assert resp.status == 401
