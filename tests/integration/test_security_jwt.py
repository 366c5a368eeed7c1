"""Forged session JWTs on a write request: each is a 401 with the Bearer challenge, and
nothing stored changes. The control case (right key, HS256) is accepted, so the refusals
are about the forgery, not about a broken test token."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from tests.servers import AgentCtx, Server


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(agent: AgentCtx, server: Server, **overrides: Any) -> dict[str, Any]:
    real = jwt.decode(agent.jwt, server.env["JWT_SECRET"], algorithms=["HS256"])
    real["role"] = "admin"  # every forgery also tries to escalate
    real.update(overrides)
    return real


def forge(kind: str, agent: AgentCtx, server: Server) -> str:
    key = server.env["JWT_SECRET"]
    now = int(time.time())
    if kind == "alg-none":
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{_b64(json.dumps(_claims(agent, server)).encode())}."
    if kind == "alg-none-with-signature":
        header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        body = _b64(json.dumps(_claims(agent, server)).encode())
        return f"{header}.{body}.{agent.jwt.split('.')[2]}"
    if kind == "hs256-wrong-key":
        return jwt.encode(_claims(agent, server), secrets.token_hex(32), algorithm="HS256")
    if kind == "rs256-header":
        # The HS256 signature under an RS256 label: the algorithm-confusion shape.
        header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
        body = _b64(json.dumps(_claims(agent, server)).encode())
        return f"{header}.{body}.{agent.jwt.split('.')[2]}"
    if kind == "expired":
        return jwt.encode(
            _claims(agent, server, iat=now - 7200, exp=now - 3600), key, algorithm="HS256"
        )
    if kind == "future-iat":
        return jwt.encode(
            _claims(agent, server, iat=now + 3600, exp=now + 7200), key, algorithm="HS256"
        )
    if kind == "missing-tid":
        claims = _claims(agent, server)
        del claims["tid"]
        return jwt.encode(claims, key, algorithm="HS256")
    if kind == "control":
        return jwt.encode(_claims(agent, server, role=agent.role), key, algorithm="HS256")
    raise AssertionError(kind)


FORGERIES = [
    "alg-none",
    "alg-none-with-signature",
    "hs256-wrong-key",
    "rs256-header",
    "expired",
    "future-iat",
    "missing-tid",
]


@pytest.mark.parametrize("kind", FORGERIES)
def test_forged_jwt_is_401_and_changes_nothing(
    server: Server,
    make_agent: Callable[..., AgentCtx],
    table_counts: Callable[[], dict[str, int]],
    kind: str,
) -> None:
    agent = make_agent()
    token = forge(kind, agent, server)
    api = server.api(token)
    before = table_counts()
    for resp in (
        api.post("/api/v1/rooms", {"slug": f"forged-{secrets.token_hex(4)}"}),
        api.post("/api/v1/agents", {"name": f"forged-{secrets.token_hex(4)}", "role": "admin"}),
        api.get("/api/v1/audit"),
    ):
        assert resp.status == 401, (kind, resp.text)
        assert resp.error_code() == "unauthorized"
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert table_counts() == before


def test_control_jwt_with_the_right_key_is_accepted(
    server: Server, make_agent: Callable[..., AgentCtx]
) -> None:
    agent = make_agent()
    resp = server.api(forge("control", agent, server)).get("/api/v1/agents/me")
    assert resp.status == 200
    assert resp.body["id"] == agent.id
