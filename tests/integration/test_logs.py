"""No secret in the server log: after a full session (token exchange, REST calls, a revoked
token, a bad JWT, a new token issued), the captured log holds none of the credentials used,
while it does hold the access lines that prove the session was logged."""

from __future__ import annotations

from collections.abc import Callable

from tests.servers import AgentCtx, Server, login


def test_log_holds_no_token_secret_or_jwt_after_a_full_session(
    server: Server,
    admin: AgentCtx,
    make_agent: Callable[..., AgentCtx],
    make_room: Callable[..., dict[str, object]],
) -> None:
    agent = make_agent()
    room = make_room(agent)
    room_path = f"/api/v1/rooms/{room['id']}"
    assert agent.api.get("/api/v1/agents/me").status == 200
    assert agent.api.post(f"{room_path}/messages", {"body": "hello"}).status == 201
    assert agent.api.get(f"{room_path}/messages", params={"limit": 5}).status == 200
    assert agent.api.post("/api/v1/rooms", {"slug": "Not A Slug"}).status == 400

    # A second token, issued, used, revoked, then tried again.
    issued = admin.api.post(f"/api/v1/agents/{agent.id}/tokens", {})
    assert issued.status == 201
    second_token = issued.body["token"]
    second_jwt = login(server, second_token)
    assert server.api(second_jwt).get("/api/v1/rooms").status == 200
    assert admin.api.delete(f"/api/v1/tokens/{issued.body['prefix']}").status == 204
    assert server.api(second_token).post("/api/v1/sessions").status == 401
    assert server.api(second_jwt).get("/api/v1/rooms").status == 401

    # A JWT with a broken signature, and an API token used where a JWT belongs.
    head, payload, _sig = agent.jwt.split(".")
    bad_jwt = f"{head}.{payload}.{'A' * 43}"
    assert server.api(bad_jwt).get("/api/v1/rooms").status == 401
    assert server.api(agent.api_token).get("/api/v1/rooms").status == 401
    # A malformed token with a secret-looking tail.
    assert server.api(f"{agent.api_token}x!").post("/api/v1/sessions").status == 401

    log = server.log_text()
    assert "POST /api/v1/rooms/{id}/messages 201" in log  # the session was logged
    assert f"agent={agent.name}" in log
    for token in (agent.api_token, second_token):
        secret = token.split("_", 2)[2]
        assert token not in log
        assert secret not in log
        assert secret[:16] not in log
    for jwt in (agent.jwt, second_jwt, bad_jwt, admin.jwt):
        assert jwt not in log
        assert jwt.split(".")[2] not in log  # the signature alone
        assert jwt.split(".")[1] not in log  # nor the claims
    assert admin.api_token.split("_", 2)[2] not in log
    assert server.env["JWT_SECRET"] not in log
