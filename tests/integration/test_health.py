"""Liveness and readiness, and the 503 a client gets when PostgreSQL is away."""

from __future__ import annotations

import time
import uuid

import jwt as pyjwt

from tests.helpers import free_port
from tests.servers import start_server, stop_server


def test_healthz(server):
    resp = server.api().get("/healthz")
    assert resp.status == 200
    assert resp.body["status"] == "ok"
    assert resp.body["uptime"] >= 0


def test_readyz(server):
    resp = server.api().get("/readyz")
    assert resp.status == 200
    assert resp.body == {"status": "ready", "checks": {"db": "ok"}}


def test_unknown_route_is_json_404(server):
    resp = server.api().get("/api/v1/does-not-exist")
    assert resp.status == 404
    assert resp.error_code() == "not_found"


def test_database_unreachable(database, tmp_path):
    env = dict(database.env, POSTGRES_PORT=str(free_port()), DB_CONNECT_TIMEOUT="1")
    srv = start_server(env, tmp_path / "down.log", wait_ready=False)
    try:
        api = srv.api()
        assert api.get("/healthz").status == 200

        ready = api.get("/readyz")
        assert ready.status == 503
        assert ready.body == {"status": "unavailable", "checks": {"db": "unavailable"}}

        # A well-formed session whose check needs the database.
        now = int(time.time())
        claims = {
            "sub": str(uuid.uuid4()),
            "role": "agent",
            "tid": "a" * 12,
            "iat": now,
            "exp": now + 60,
            "jti": "x",
        }
        token = pyjwt.encode(claims, env["JWT_SECRET"], algorithm="HS256")
        rooms = api.with_token(token).get("/api/v1/rooms")
        assert rooms.status == 503, rooms.text
        assert rooms.error_code() == "unavailable"

        # The token exchange needs the database too.
        login = api.with_token("agt_abcdefghijkl_" + "A" * 43).post("/api/v1/sessions")
        assert login.status == 503, login.text
        assert login.error_code() == "unavailable"
        assert "Traceback" not in srv.log_text()
    finally:
        assert stop_server(srv) == 0
