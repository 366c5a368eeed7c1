"""The base handler in-process (pytest-tornado): the JSON error format for routing, auth and
an unreachable database, without a PostgreSQL server or a subprocess.

The database here is real aiopg pointed at a closed port, so every query fails the way it
does when PostgreSQL is down.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import uuid

import pytest
import tornado.httpclient
import tornado.web

from agenthub.app import make_app, make_database
from agenthub.auth import jwt_tokens
from agenthub.config import load_settings
from agenthub.services.registry import build_services

JWT_SECRET = secrets.token_hex(32)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app(io_loop):
    settings = load_settings(
        {
            "JWT_SECRET": JWT_SECRET,
            "POSTGRES_PORT": str(_closed_port()),
            "DB_CONNECT_TIMEOUT": "1",
            "MAX_REQUEST_BYTES": "4096",
        }
    )
    db = make_database(settings)
    io_loop.run_sync(db.start)
    services = build_services(settings, db)
    yield make_app(services)
    io_loop.run_sync(services.close)


async def fetch(http_client, base_url, path, **kw) -> tornado.httpclient.HTTPResponse:
    response: tornado.httpclient.HTTPResponse = await http_client.fetch(
        base_url + path, raise_error=False, **kw
    )
    return response


def error_of(response: tornado.httpclient.HTTPResponse) -> dict[str, object]:
    assert response.headers["Content-Type"].startswith("application/json")
    body = json.loads(response.body)
    assert set(body) == {"error"}
    assert isinstance(body["error"]["code"], str)
    assert isinstance(body["error"]["message"], str)
    assert "Traceback" not in response.body.decode()
    return dict(body["error"])


@pytest.mark.gen_test
async def test_healthz_answers_without_the_database(http_client, base_url):
    response = await fetch(http_client, base_url, "/healthz")
    assert response.code == 200
    body = json.loads(response.body)
    assert body["status"] == "ok"
    assert isinstance(body["uptime"], int | float)


@pytest.mark.gen_test
async def test_readyz_is_503_json_when_the_database_is_away(http_client, base_url):
    response = await fetch(http_client, base_url, "/readyz")
    assert response.code == 503
    assert json.loads(response.body) == {"status": "unavailable", "checks": {"db": "unavailable"}}


@pytest.mark.gen_test
async def test_authenticated_call_is_503_json_when_the_database_is_away(http_client, base_url):
    token, _ = jwt_tokens.issue(
        JWT_SECRET, agent_id=uuid.uuid4(), role="agent", token_prefix="a" * 12, ttl_seconds=60
    )
    response = await fetch(
        http_client, base_url, "/api/v1/rooms", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.code == 503
    assert error_of(response)["code"] == "unavailable"


@pytest.mark.gen_test
async def test_unknown_route_is_404_json(http_client, base_url):
    response = await fetch(http_client, base_url, "/api/v1/nothing-here")
    assert response.code == 404
    assert error_of(response)["code"] == "not_found"


@pytest.mark.gen_test
async def test_wrong_method_is_405_json(http_client, base_url):
    response = await fetch(http_client, base_url, "/healthz", method="DELETE")
    assert response.code == 405
    assert error_of(response)["code"] == "method_not_allowed"


@pytest.mark.gen_test
async def test_missing_bearer_is_401_with_challenge(http_client, base_url):
    response = await fetch(http_client, base_url, "/api/v1/agents/me")
    assert response.code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.gen_test
async def test_bad_jwt_is_401_before_any_database_access(http_client, base_url):
    forged, _ = jwt_tokens.issue(
        "x" * 64, agent_id=uuid.uuid4(), role="admin", token_prefix="a" * 12, ttl_seconds=60
    )
    response = await fetch(
        http_client, base_url, "/api/v1/agents/me", headers={"Authorization": f"Bearer {forged}"}
    )
    assert response.code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


@pytest.mark.gen_test
async def test_body_far_over_the_limit_is_413_json_before_auth(http_client, base_url):
    # More than 4x MAX_REQUEST_BYTES: refused from the Content-Length, unread.
    response = await fetch(
        http_client, base_url, "/api/v1/rooms", method="POST", body=b"x" * 20_000
    )
    assert response.code == 413
    assert error_of(response)["code"] == "payload_too_large"


async def exchange(reader, writer, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on an open connection; the response read by its Content-Length."""
    writer.write(request)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = head.strip().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(status_line.split()[1]), headers, body


@pytest.mark.gen_test
async def test_a_503_before_the_body_keeps_the_connection_usable(http_server, http_port):
    """The database is away: authentication answers 503 before the POST body is read. The
    answer waits for the body, so the next request on the connection is answered too."""
    token, _ = jwt_tokens.issue(
        JWT_SECRET, agent_id=uuid.uuid4(), role="agent", token_prefix="a" * 12, ttl_seconds=60
    )
    body = json.dumps({"body": "x" * 2000}).encode()
    post = (
        f"POST /api/v1/rooms/{uuid.uuid4()}/messages HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", http_port)
    try:
        status, headers, payload = await exchange(reader, writer, post)
        assert status == 503
        assert json.loads(payload)["error"]["code"] == "unavailable"
        assert headers.get("connection", "").lower() != "close"
        status, _, _ = await exchange(reader, writer, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert status == 200
    finally:
        writer.close()


def test_app_is_a_tornado_application(app):
    assert isinstance(app, tornado.web.Application)
