"""POST /api/v1/sessions and the JWT every other call carries: all the ways to be refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt as pyjwt
import pytest
import socketio

from tests.realtime_support import Socket, run
from tests.servers import login


def _claims(agent, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": agent.id,
        "role": agent.role,
        "tid": agent.api_token.split("_")[1],
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def assert_401(resp) -> None:
    assert resp.status == 401, resp.text
    assert resp.error_code() == "unauthorized"
    assert resp.headers["www-authenticate"].startswith("Bearer")


def test_exchange_returns_a_jwt(server, make_agent):
    agent = make_agent()
    before = datetime.now(UTC)
    resp = server.api(agent.api_token).post("/api/v1/sessions")
    assert resp.status == 201, resp.text
    assert set(resp.body) == {"token", "expiresAt", "agent"}
    assert resp.body["agent"]["id"] == agent.id
    assert resp.body["agent"]["name"] == agent.name
    token = resp.body["token"]
    assert pyjwt.get_unverified_header(token)["alg"] == "HS256"
    claims = pyjwt.decode(token, server.env["JWT_SECRET"], algorithms=["HS256"])
    assert {"sub", "role", "iat", "exp", "jti"} <= set(claims)
    assert claims["sub"] == agent.id
    assert claims["role"] == "agent"
    assert claims["exp"] - claims["iat"] == 900
    expires = datetime.fromisoformat(resp.body["expiresAt"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=890) <= expires <= before + timedelta(seconds=960)
    me = server.api(token).get("/api/v1/agents/me")
    assert me.status == 200
    assert me.body["id"] == agent.id


def test_each_exchange_is_a_new_session(server, make_agent):
    agent = make_agent()
    a = login(server, agent.api_token)
    b = login(server, agent.api_token)
    key = server.env["JWT_SECRET"]
    ja = pyjwt.decode(a, key, algorithms=["HS256"])["jti"]
    jb = pyjwt.decode(b, key, algorithms=["HS256"])["jti"]
    assert ja != jb


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token agt_x"],
)
def test_exchange_without_a_bearer_token(server, header):
    headers = {} if header is None else {"Authorization": header}
    assert_401(server.api().post("/api/v1/sessions", headers=headers))


@pytest.mark.parametrize(
    "credential",
    [
        "not-a-token",
        "agt_short_secret",
        "agt_abcdefghijkl_" + "A" * 10,
        "agt_ABCDEFGHIJKL_" + "A" * 43,
        "x" * 5000,
    ],
)
def test_exchange_with_a_malformed_token(server, credential):
    assert_401(server.api(credential).post("/api/v1/sessions"))


def test_exchange_with_an_unknown_prefix(server):
    assert_401(server.api("agt_zzzzzzzzzzzz_" + "A" * 43).post("/api/v1/sessions"))


def test_exchange_with_a_wrong_secret(server, make_agent):
    agent = make_agent()
    prefix = agent.api_token.split("_")[1]
    assert_401(server.api(f"agt_{prefix}_{'B' * 43}").post("/api/v1/sessions"))


def test_exchange_with_a_jwt_instead_of_an_api_token_says_which_was_expected(server, make_agent):
    agent = make_agent()
    resp = server.api(agent.jwt).post("/api/v1/sessions")
    assert_401(resp)
    assert resp.body["error"]["message"] == (
        "this is a session JWT; POST /api/v1/sessions takes an API token (agt_...)"
    )


API_TOKEN_SENT_AS_JWT = (
    "this is an API token (agt_...); exchange it at POST /api/v1/sessions for a session JWT"
    " and send that"
)


def test_api_token_is_not_a_session_and_the_answer_says_so(server, make_agent):
    agent = make_agent()
    resp = server.api(agent.api_token).get("/api/v1/agents/me")
    assert_401(resp)
    assert resp.body["error"]["message"] == API_TOKEN_SENT_AS_JWT


def test_socket_handshake_with_an_api_token_says_which_was_expected(server, make_agent):
    agent = make_agent()

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            with pytest.raises(socketio.exceptions.ConnectionError):
                await sock.connect(agent.api_token)
            error = sock.connect_errors[-1]
            assert error["code"] == "unauthorized"
            assert error["message"] == API_TOKEN_SENT_AS_JWT
        finally:
            await sock.close()

    run(scenario())


def test_expired_api_token(server, make_agent, sql):
    agent = make_agent()
    prefix = agent.api_token.split("_")[1]
    sql("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE prefix = %s", prefix)
    assert_401(server.api(agent.api_token).post("/api/v1/sessions"))
    # The session already exchanged for it ends too.
    assert_401(agent.api.get("/api/v1/agents/me"))


def test_an_api_token_expiring_ends_its_remembered_session_on_time(server, admin, make_agent):
    agent = make_agent()
    expires = datetime.now(UTC) + timedelta(seconds=3)
    issued = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {"expiresAt": expires.isoformat()})
    assert issued.status == 201, issued.text
    resp = server.api(issued.body["token"]).post("/api/v1/sessions")
    assert resp.status == 201, resp.text
    # The session ends with its API token, not JWT_TTL_SECONDS later.
    ends = datetime.fromisoformat(resp.body["expiresAt"].replace("Z", "+00:00"))
    assert ends <= expires
    # A JWT that would outlive its API token (signed with the server's key): the token's
    # expiry, remembered with its standing, is compared with the clock at every use.
    claims = _claims(dataclasses.replace(agent, api_token=issued.body["token"]))
    outliving = pyjwt.encode(claims, server.env["JWT_SECRET"], algorithm="HS256")
    api = server.api(outliving)
    assert api.get("/api/v1/agents/me").status == 200
    assert api.get("/api/v1/agents/me").status == 200  # remembered
    time.sleep(max(0.0, expires.timestamp() - time.time()) + 0.5)
    resp = api.get("/api/v1/agents/me")
    assert_401(resp)
    assert resp.body["error"]["message"] == "session is no longer valid"


def test_revoked_api_token_and_its_session_fail_at_once(server, make_agent):
    agent = make_agent()
    prefix = agent.api_token.split("_")[1]
    for _ in range(3):  # the session's standing is remembered now
        assert agent.api.get("/api/v1/agents/me").status == 200
    assert agent.api.delete(f"/api/v1/tokens/{prefix}").status == 204
    assert_401(agent.api.get("/api/v1/agents/me"))
    assert_401(server.api(agent.api_token).post("/api/v1/sessions"))


def test_disabling_an_agent_ends_its_sessions(server, admin, make_agent):
    agent = make_agent()
    assert agent.api.get("/api/v1/rooms").status == 200
    resp = admin.api.patch(f"/api/v1/agents/{agent.id}", {"disabled": True})
    assert resp.status == 200, resp.text
    assert resp.body["disabled"] is True
    assert_401(agent.api.get("/api/v1/rooms"))
    assert_401(server.api(agent.api_token).post("/api/v1/sessions"))
    # Enabling again restores the same token.
    assert admin.api.patch(f"/api/v1/agents/{agent.id}", {"disabled": False}).status == 200
    assert agent.api.get("/api/v1/rooms").status == 200


def test_forged_jwt_with_the_right_key_is_accepted_so_the_rejections_mean_something(
    server, make_agent
):
    agent = make_agent()
    token = pyjwt.encode(_claims(agent), server.env["JWT_SECRET"], algorithm="HS256")
    assert server.api(token).get("/api/v1/agents/me").status == 200


def test_jwt_alg_none(server, make_agent):
    agent = make_agent()
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(agent))}."
    assert_401(server.api(unsigned).get("/api/v1/agents/me"))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_jwt_other_hmac_alg_with_the_right_key(server, make_agent, alg):
    agent = make_agent()
    # Signed with the server's own key: only the algorithm is wrong.
    token = pyjwt.encode(_claims(agent), server.env["JWT_SECRET"], algorithm=alg)
    assert_401(server.api(token).get("/api/v1/agents/me"))


def test_jwt_rs256_header(server, make_agent):
    agent = make_agent()
    good = pyjwt.encode(_claims(agent), server.env["JWT_SECRET"], algorithm="HS256")
    _, body, sig = good.split(".")
    token = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{body}.{sig}"
    assert_401(server.api(token).get("/api/v1/agents/me"))


def test_jwt_bad_signature(server, make_agent):
    agent = make_agent()
    token = pyjwt.encode(_claims(agent), "another-secret-" * 4, algorithm="HS256")
    assert_401(server.api(token).get("/api/v1/agents/me"))


def test_jwt_tampered_role(server, make_agent):
    agent = make_agent()
    header, _, sig = agent.jwt.split(".")
    evil = _b64(_claims(agent, role="admin"))
    assert_401(server.api(f"{header}.{evil}.{sig}").get("/api/v1/audit"))


def test_jwt_past_exp(server, make_agent):
    agent = make_agent()
    now = int(time.time())
    token = pyjwt.encode(
        _claims(agent, iat=now - 1000, exp=now - 5), server.env["JWT_SECRET"], algorithm="HS256"
    )
    assert_401(server.api(token).get("/api/v1/agents/me"))


def test_jwt_for_another_agents_token(server, make_agent):
    """A validly signed JWT whose sub does not own its tid is refused."""
    alice, bob = make_agent(), make_agent()
    claims = _claims(alice, tid=bob.api_token.split("_")[1])
    token = pyjwt.encode(claims, server.env["JWT_SECRET"], algorithm="HS256")
    assert_401(server.api(token).get("/api/v1/agents/me"))


def test_role_comes_from_the_database_not_the_jwt(server, make_agent):
    agent = make_agent()
    token = pyjwt.encode(_claims(agent, role="admin"), server.env["JWT_SECRET"], algorithm="HS256")
    resp = server.api(token).get("/api/v1/audit")
    assert resp.status == 403, resp.text


def test_failed_and_successful_logins_are_audited(server, admin, make_agent):
    agent = make_agent()
    prefix = agent.api_token.split("_")[1]
    assert server.api(f"agt_{prefix}_{'C' * 43}").post("/api/v1/sessions").status == 401
    login(server, agent.api_token)
    events = admin.api.get("/api/v1/audit", params={"type": "login-failed", "limit": 20}).body
    failed = [e for e in events["events"] if e["payload"].get("prefix") == prefix]
    assert failed
    assert failed[0]["payload"]["reason"] == "bad-secret"
    assert failed[0]["agentId"] == agent.id
    ok = admin.api.get("/api/v1/audit", params={"type": "login", "limit": 20}).body["events"]
    assert any(e["payload"].get("prefix") == prefix and e["agentId"] == agent.id for e in ok)
