"""API tokens: issue (admin), list (admin or self, never hashes), revoke (admin or owner)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.servers import login


def prefix_of(token: str) -> str:
    return token.split("_")[1]


def test_admin_issues_a_token_that_works(server, admin, make_agent, table_counts):
    agent = make_agent()
    before = table_counts()
    resp = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {})
    assert resp.status == 201, resp.text
    assert {"token", "prefix", "expiresAt"} <= set(resp.body)
    assert resp.body["expiresAt"] is None
    token = resp.body["token"]
    assert token.startswith(f"agt_{resp.body['prefix']}_")
    assert len(resp.body["prefix"]) >= 10
    assert table_counts()["api_tokens"] == before["api_tokens"] + 1
    jwt = login(server, token)
    assert server.api(jwt).get("/api/v1/agents/me").body["id"] == agent.id


def test_issue_with_an_expiry(server, admin, make_agent):
    agent = make_agent()
    when = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    resp = admin.api.post(
        f"/api/v1/agents/{agent.id}/tokens", {"expiresAt": when.isoformat().replace("+00:00", "Z")}
    )
    assert resp.status == 201, resp.text
    assert datetime.fromisoformat(resp.body["expiresAt"].replace("Z", "+00:00")) == when
    login(server, resp.body["token"])


@pytest.mark.parametrize(
    "expires",
    ["2001-01-01T00:00:00Z", "2099-01-01T00:00:00", "tomorrow", 12345, True],
)
def test_issue_with_a_bad_expiry_is_400(admin, make_agent, table_counts, expires):
    agent = make_agent()
    before = table_counts()
    resp = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {"expiresAt": expires})
    assert resp.status == 400, resp.text
    assert "expiresAt" in resp.body["error"]["details"]
    assert table_counts() == before


def test_non_admin_cannot_issue(make_agent, table_counts):
    agent = make_agent()
    before = table_counts()
    resp = agent.api.post(f"/api/v1/agents/{agent.id}/tokens", {})
    assert resp.status == 403
    assert table_counts() == before


def test_issue_for_an_unknown_agent_is_404(admin, table_counts):
    before = table_counts()
    resp = admin.api.post(f"/api/v1/agents/{uuid.uuid4()}/tokens", {})
    assert resp.status == 404
    assert table_counts() == before


def test_list_tokens_self_and_admin_never_hashes(admin, make_agent):
    agent = make_agent()
    second = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {}).body
    for caller in (agent, admin):
        resp = caller.api.get(f"/api/v1/agents/{agent.id}/tokens")
        assert resp.status == 200
        prefixes = {t["prefix"] for t in resp.body["tokens"]}
        assert prefixes == {prefix_of(agent.api_token), second["prefix"]}
        for t in resp.body["tokens"]:
            assert set(t) == {
                "prefix",
                "agentId",
                "createdAt",
                "expiresAt",
                "revokedAt",
                "lastUsedAt",
            }
        assert "argon2" not in resp.text
        assert second["token"] not in resp.text
    used = next(
        t
        for t in agent.api.get(f"/api/v1/agents/{agent.id}/tokens").body["tokens"]
        if t["prefix"] == prefix_of(agent.api_token)
    )
    assert used["lastUsedAt"] is not None


def test_list_someone_elses_tokens_is_403(make_agent):
    a, b = make_agent(), make_agent()
    assert a.api.get(f"/api/v1/agents/{b.id}/tokens").status == 403


def test_list_tokens_of_unknown_agent_is_404(admin):
    assert admin.api.get(f"/api/v1/agents/{uuid.uuid4()}/tokens").status == 404


def test_owner_revokes_own_token(server, make_agent):
    agent = make_agent()
    prefix = prefix_of(agent.api_token)
    resp = agent.api.delete(f"/api/v1/tokens/{prefix}")
    assert resp.status == 204
    assert resp.text == ""
    assert agent.api.get("/api/v1/agents/me").status == 401
    assert server.api(agent.api_token).post("/api/v1/sessions").status == 401


def test_admin_revokes_and_listing_shows_it(server, admin, make_agent, sql):
    agent = make_agent()
    prefix = prefix_of(agent.api_token)

    def revocations() -> int:
        rows = sql(
            "SELECT count(*) FROM audit_events"
            " WHERE type = 'token-revoked' AND payload->>'prefix' = %s",
            prefix,
        )
        return int(str(rows[0][0]))

    assert admin.api.delete(f"/api/v1/tokens/{prefix}").status == 204
    assert agent.api.get("/api/v1/rooms").status == 401
    listed = admin.api.get(f"/api/v1/agents/{agent.id}/tokens").body["tokens"]
    revoked_at = next(t["revokedAt"] for t in listed if t["prefix"] == prefix)
    assert revoked_at is not None
    assert revocations() == 1
    # A second revocation is an idempotent 204: it keeps the first time and writes nothing.
    assert admin.api.delete(f"/api/v1/tokens/{prefix}").status == 204
    listed = admin.api.get(f"/api/v1/agents/{agent.id}/tokens").body["tokens"]
    assert next(t["revokedAt"] for t in listed if t["prefix"] == prefix) == revoked_at
    assert revocations() == 1


def test_revoking_one_token_leaves_the_other(server, admin, make_agent):
    agent = make_agent()
    other = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {}).body["token"]
    other_jwt = login(server, other)
    assert agent.api.delete(f"/api/v1/tokens/{prefix_of(agent.api_token)}").status == 204
    assert server.api(other_jwt).get("/api/v1/agents/me").status == 200


def test_someone_elses_token_is_404_and_still_works(make_agent):
    a, b = make_agent(), make_agent()
    resp = a.api.delete(f"/api/v1/tokens/{prefix_of(b.api_token)}")
    assert resp.status == 404
    assert b.api.get("/api/v1/agents/me").status == 200


@pytest.mark.parametrize("prefix", ["zzzzzzzzzzzz", "short", "UPPERCASEXXX", "a" * 40])
def test_revoke_unknown_or_malformed_prefix_is_404(admin, prefix):
    resp = admin.api.delete(f"/api/v1/tokens/{prefix}")
    assert resp.status == 404
    assert resp.error_code() == "not_found"
