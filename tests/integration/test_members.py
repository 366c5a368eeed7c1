"""Membership: join a public room yourself; members or admins add to private rooms;
remove yourself, or an admin removes anyone."""

from __future__ import annotations

import uuid


def members_of(agent, room) -> list[str]:
    resp = agent.api.get(f"/api/v1/rooms/{room['id']}/members")
    assert resp.status == 200, resp.text
    return [m["agentId"] for m in resp.body["members"]]


def test_list_members(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    resp = alice.api.get(f"/api/v1/rooms/{room['id']}/members")
    assert resp.status == 200
    (member,) = resp.body["members"]
    assert set(member) == {"agentId", "name", "displayName", "role", "joinedAt", "online"}
    assert member["agentId"] == alice.id
    assert member["name"] == alice.name


def test_join_public_room_yourself(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    before = table_counts()
    resp = bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert resp.status == 201, resp.text
    assert resp.body["agentId"] == bob.id
    assert table_counts()["room_members"] == before["room_members"] + 1
    assert bob.id in members_of(alice, room)
    assert bob.api.get(f"/api/v1/rooms/{room['id']}").body["member"] is True
    # Joining again is not an error and adds nothing.
    again = bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert again.status == 200
    assert table_counts()["room_members"] == before["room_members"] + 1


def test_non_member_cannot_add_others_to_a_public_room(make_agent, make_room, table_counts):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice)
    before = table_counts()
    resp = bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": carol.id})
    assert resp.status == 403
    assert table_counts() == before


def test_member_adds_another_to_a_public_room(make_agent, make_room):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    resp = alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert resp.status == 201
    assert bob.id in members_of(bob, room)


def test_private_room_member_adds_others(make_agent, make_room):
    alice, bob, carol = make_agent(), make_agent(), make_agent()
    room = make_room(alice, "private")
    assert alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id}).status == 201
    # bob is a member now, so bob may add carol.
    assert bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": carol.id}).status == 201
    assert set(members_of(carol, room)) == {alice.id, bob.id, carol.id}


def test_private_room_non_member_cannot_join_or_see(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice, "private")
    before = table_counts()
    join = bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert join.status == 404
    assert bob.api.get(f"/api/v1/rooms/{room['id']}/members").status == 404
    assert table_counts() == before


def test_admin_adds_to_a_private_room_without_being_a_member(make_agent, make_room, admin):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice, "private")
    resp = admin.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert resp.status == 201
    assert admin.id not in members_of(bob, room)
    assert bob.api.get(f"/api/v1/rooms/{room['id']}").status == 200


def test_add_unknown_agent_is_404(make_agent, make_room, table_counts):
    alice = make_agent()
    room = make_room(alice)
    before = table_counts()
    resp = alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": str(uuid.uuid4())})
    assert resp.status == 404
    assert table_counts() == before


def test_add_to_unknown_room_is_404(make_agent):
    alice = make_agent()
    resp = alice.api.post(f"/api/v1/rooms/{uuid.uuid4()}/members", {"agentId": alice.id})
    assert resp.status == 404


def test_remove_yourself(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    before = table_counts()
    resp = bob.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}")
    assert resp.status == 204
    assert resp.text == ""
    assert table_counts()["room_members"] == before["room_members"] - 1
    assert bob.id not in members_of(alice, room)


def test_cannot_remove_someone_else(make_agent, make_room, table_counts):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    bob.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    before = table_counts()
    # Not even the room's creator: removal is self or admin.
    resp = alice.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}")
    assert resp.status == 403
    assert table_counts() == before


def test_admin_removes_anyone(make_agent, make_room, admin):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice, "private")
    alice.api.post(f"/api/v1/rooms/{room['id']}/members", {"agentId": bob.id})
    assert admin.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}").status == 204
    assert members_of(alice, room) == [alice.id]
    # Removed from a private room: it disappears for bob.
    assert bob.api.get(f"/api/v1/rooms/{room['id']}").status == 404


def test_remove_a_non_member_is_404(make_agent, make_room, admin):
    alice, bob = make_agent(), make_agent()
    room = make_room(alice)
    assert admin.api.delete(f"/api/v1/rooms/{room['id']}/members/{bob.id}").status == 404


def test_remove_with_bad_ids_is_400(make_agent, make_room):
    alice = make_agent()
    room = make_room(alice)
    resp = alice.api.delete(f"/api/v1/rooms/{room['id']}/members/No_Pe")
    assert resp.status == 400
    assert "agentId" in resp.body["error"]["details"]
    resp = alice.api.delete(f"/api/v1/rooms/No_Pe/members/{alice.id}")
    assert resp.status == 400
