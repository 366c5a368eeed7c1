"""The whole path once: CLI bootstrap, login, room, message, page."""

from __future__ import annotations


def test_post_and_read_back(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    posted = alice.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "hello"})
    assert posted.status == 201, posted.text
    assert posted.body["seq"] == 1
    page = alice.api.get(f"/api/v1/rooms/{room['id']}/messages")
    assert page.status == 200
    assert [m["body"] for m in page.body["messages"]] == ["hello"]
    assert page.body["nextCursor"] is None
