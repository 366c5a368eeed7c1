"""One request reads its Authorization header and decodes its JWT once, though the rate limit
(which agent to charge) and authentication (who is calling) both need the claims."""

from __future__ import annotations

import secrets
import socket
import uuid
from typing import Any

import jwt
import pytest

from agenthub.app import make_app, make_database
from agenthub.auth import jwt_tokens
from agenthub.config import load_settings
from agenthub.services.registry import build_services

JWT_SECRET = secrets.token_hex(32)


@pytest.fixture
def app(io_loop):
    with socket.socket() as s:  # a closed port: every query fails as with PostgreSQL down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(
        {"JWT_SECRET": JWT_SECRET, "POSTGRES_PORT": str(port), "DB_CONNECT_TIMEOUT": "1"}
    )
    db = make_database(settings)
    io_loop.run_sync(db.start)
    services = build_services(settings, db)
    yield make_app(services)
    io_loop.run_sync(services.close)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return calls


@pytest.mark.gen_test
async def test_a_request_decodes_its_jwt_once(http_client, base_url, decodes):
    token, _ = jwt_tokens.issue(
        JWT_SECRET, agent_id=uuid.uuid4(), role="agent", token_prefix="a" * 12, ttl_seconds=60
    )
    response = await http_client.fetch(
        f"{base_url}/api/v1/rooms",
        headers={"Authorization": f"Bearer {token}"},
        raise_error=False,
    )
    assert response.code == 503  # got past the signature to the database check
    assert decodes == [token]


@pytest.mark.gen_test
async def test_a_forged_jwt_is_decoded_once_too(http_client, base_url, decodes):
    forged, _ = jwt_tokens.issue(
        "x" * 64, agent_id=uuid.uuid4(), role="admin", token_prefix="a" * 12, ttl_seconds=60
    )
    response = await http_client.fetch(
        f"{base_url}/api/v1/rooms",
        headers={"Authorization": f"Bearer {forged}"},
        raise_error=False,
    )
    assert response.code == 401
    assert decodes == [forged]
