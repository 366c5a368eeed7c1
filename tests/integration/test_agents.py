"""Agents: me, list, get, create (admin), disable (admin)."""

from __future__ import annotations

import uuid

import pytest

AGENT_KEYS = {"id", "name", "displayName", "role", "disabled", "createdAt"}


def test_me(make_agent):
    agent = make_agent()
    resp = agent.api.get("/api/v1/agents/me")
    assert resp.status == 200
    assert set(resp.body) == AGENT_KEYS
    assert resp.body["id"] == agent.id
    assert resp.body["name"] == agent.name
    assert resp.body["role"] == "agent"
    assert resp.body["disabled"] is False


def test_list_and_get(make_agent, admin):
    agent = make_agent()
    listed = agent.api.get("/api/v1/agents")
    assert listed.status == 200
    by_id = {a["id"]: a for a in listed.body["agents"]}
    assert agent.id in by_id
    assert admin.id in by_id
    names = [a["name"] for a in listed.body["agents"]]
    assert names == sorted(names)
    one = agent.api.get(f"/api/v1/agents/{admin.id}")
    assert one.status == 200
    assert one.body == by_id[admin.id]


def test_get_unknown_agent_is_404(make_agent):
    resp = make_agent().api.get(f"/api/v1/agents/{uuid.uuid4()}")
    assert resp.status == 404
    assert resp.error_code() == "not_found"


def test_get_with_an_id_that_is_neither_uuid_nor_name_is_400(make_agent):
    resp = make_agent().api.get("/api/v1/agents/Not_A_Name")
    assert resp.status == 400
    assert resp.error_code() == "validation_failed"


def test_admin_creates_an_agent(admin, table_counts):
    name = f"new-{uuid.uuid4().hex[:8]}"
    before = table_counts()
    resp = admin.api.post("/api/v1/agents", {"name": name, "displayName": "New One"})
    assert resp.status == 201, resp.text
    assert resp.headers["location"] == f"/api/v1/agents/{resp.body['id']}"
    assert resp.body["name"] == name
    assert resp.body["displayName"] == "New One"
    assert resp.body["role"] == "agent"
    after = table_counts()
    assert after["agents"] == before["agents"] + 1
    assert admin.api.get(f"/api/v1/agents/{resp.body['id']}").body["name"] == name


def test_display_name_defaults_to_the_name(admin):
    name = f"plain-{uuid.uuid4().hex[:8]}"
    resp = admin.api.post("/api/v1/agents", {"name": name, "role": "admin"})
    assert resp.status == 201
    assert resp.body["displayName"] == name
    assert resp.body["role"] == "admin"


def test_duplicate_name_is_409(admin, table_counts):
    name = f"dup-{uuid.uuid4().hex[:8]}"
    assert admin.api.post("/api/v1/agents", {"name": name}).status == 201
    before = table_counts()
    resp = admin.api.post("/api/v1/agents", {"name": name})
    assert resp.status == 409
    assert resp.error_code() == "conflict"
    assert resp.body["error"]["details"] == {"name": [f"{name!r} is taken"]}
    assert table_counts() == before


@pytest.mark.parametrize(
    "name",
    ["", "Upper", "has space", "-leading", "trailing-", "under_score", "a" * 65, "é", "a/b"],
)
def test_bad_slug_is_400(admin, table_counts, name):
    before = table_counts()
    resp = admin.api.post("/api/v1/agents", {"name": name})
    assert resp.status == 400, resp.text
    assert resp.error_code() == "validation_failed"
    assert "name" in resp.body["error"]["details"]
    assert table_counts() == before


@pytest.mark.parametrize("display", ["   ", "x" * 201, "bad\nline"])
def test_bad_display_name_is_400(admin, display):
    resp = admin.api.post(
        "/api/v1/agents", {"name": f"d-{uuid.uuid4().hex[:8]}", "displayName": display}
    )
    assert resp.status == 400
    assert "displayName" in resp.body["error"]["details"]


@pytest.mark.parametrize("display", ["", None])
def test_empty_or_null_display_name_means_the_default(admin, display):
    name = f"d-{uuid.uuid4().hex[:8]}"
    resp = admin.api.post("/api/v1/agents", {"name": name, "displayName": display})
    assert resp.status == 201, resp.text
    assert resp.body["displayName"] == name


def test_bad_role_is_400(admin):
    resp = admin.api.post("/api/v1/agents", {"name": f"r-{uuid.uuid4().hex[:8]}", "role": "root"})
    assert resp.status == 400
    assert "role" in resp.body["error"]["details"]


def test_non_admin_cannot_create(make_agent, table_counts):
    agent = make_agent()
    before = table_counts()
    resp = agent.api.post("/api/v1/agents", {"name": f"x-{uuid.uuid4().hex[:8]}"})
    assert resp.status == 403
    assert resp.error_code() == "forbidden"
    assert table_counts() == before


def test_non_admin_cannot_disable(make_agent):
    a, b = make_agent(), make_agent()
    resp = a.api.patch(f"/api/v1/agents/{b.id}", {"disabled": True})
    assert resp.status == 403
    assert b.api.get("/api/v1/agents/me").status == 200


def test_admin_cannot_disable_itself(admin):
    resp = admin.api.patch(f"/api/v1/agents/{admin.id}", {"disabled": True})
    assert resp.status == 400
    assert admin.api.get("/api/v1/agents/me").body["disabled"] is False


def test_disable_unknown_agent_is_404(admin):
    resp = admin.api.patch(f"/api/v1/agents/{uuid.uuid4()}", {"disabled": True})
    assert resp.status == 404


@pytest.mark.parametrize("body", [{"disabled": "yes"}, {"disabled": 1}, {}, {"disabled": None}])
def test_disable_with_a_bad_body_is_400(admin, make_agent, body):
    agent = make_agent()
    resp = admin.api.patch(f"/api/v1/agents/{agent.id}", body)
    assert resp.status == 400
    assert agent.api.get("/api/v1/agents/me").status == 200


def test_disabled_agent_is_listed_as_disabled(admin, make_agent):
    agent = make_agent()
    assert admin.api.patch(f"/api/v1/agents/{agent.id}", {"disabled": True}).status == 200
    assert admin.api.get(f"/api/v1/agents/{agent.id}").body["disabled"] is True
