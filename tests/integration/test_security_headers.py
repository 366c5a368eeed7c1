"""Security headers on every response, and CORS from ALLOWED_ORIGINS only (exact origins and
CIDR blocks matched against an IP-literal origin host), preflight included."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.helpers import Response
from tests.servers import AgentCtx, Server, start_server, stop_server
from tests.servers import ScratchDatabase as PgDatabase

EXPECTED = {
    "content-security-policy": "default-src 'self'",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin",
    "x-content-type-options": "nosniff",
}


def assert_security_headers(resp: Response) -> None:
    for name, value in EXPECTED.items():
        assert resp.headers.get(name) == value, (resp.status, name, resp.headers)


def test_every_kind_of_response_carries_the_security_headers(
    server: Server, admin: AgentCtx, make_room: Callable[..., dict[str, object]]
) -> None:
    room = make_room(admin)
    anonymous = server.api()
    responses = [
        anonymous.get("/healthz"),  # 200
        anonymous.get("/metrics"),  # text/plain
        anonymous.get("/api/v1/openapi.json"),
        anonymous.get("/api/v1/rooms"),  # 401
        anonymous.get(f"/no-such-route/{uuid.uuid4()}"),  # 404 unmatched
        anonymous.request("PUT", "/healthz"),  # 405
        admin.api.post("/api/v1/rooms", raw=b"{not json"),  # 400
        admin.api.post("/api/v1/rooms", raw=b"x" * (1_048_576 + 10)),  # 413
        admin.api.get(f"/api/v1/rooms/{room['id']}"),
        admin.api.post(f"/api/v1/rooms/{room['id']}/messages", {"body": "hi"}),  # 201
        admin.api.delete(f"/api/v1/rooms/{room['id']}/members/{uuid.uuid4()}"),
    ]
    statuses = {r.status for r in responses}
    assert {200, 201, 400, 401, 404, 405, 413} <= statuses, statuses
    for resp in responses:
        assert_security_headers(resp)


def test_405_names_the_allowed_methods(server: Server) -> None:
    resp = server.api().request("PUT", "/api/v1/rooms")
    assert resp.status == 405
    assert resp.error_code() == "method_not_allowed"
    assert resp.headers["allow"] == "GET, POST, OPTIONS"


ALLOWED = "http://app.example:8080,10.0.0.0/8,fd00::/8"


@pytest.fixture(scope="module")
def cors_server(database: PgDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(
        dict(database.env, ALLOWED_ORIGINS=ALLOWED),
        tmp_path_factory.mktemp("cors") / "agenthub.log",
    )
    yield srv
    assert stop_server(srv) == 0


@pytest.mark.parametrize(
    "origin",
    [
        "http://app.example:8080",
        "http://10.1.2.3:3000",
        "https://10.255.0.1",
        "http://[fd00::5]:80",
    ],
)
def test_allowed_origin_gets_cors_headers_and_preflight(cors_server: Server, origin: str) -> None:
    api = cors_server.api()
    simple = api.get("/healthz", headers={"Origin": origin})
    assert simple.status == 200
    assert simple.headers["access-control-allow-origin"] == origin
    assert "Origin" in simple.headers["vary"]
    assert "Retry-After" in simple.headers["access-control-expose-headers"]

    preflight = api.request(
        "OPTIONS",
        "/api/v1/rooms",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status == 204, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-methods"] == "GET, POST, OPTIONS"
    allowed_headers = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed_headers and "content-type" in allowed_headers
    assert int(preflight.headers["access-control-max-age"]) > 0
    assert_security_headers(preflight)

    # An error answer still carries the CORS headers, so the browser script can read it.
    error = api.get("/api/v1/rooms", headers={"Origin": origin})
    assert error.status == 401
    assert error.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example",
        "http://app.example:8081",  # exact origins match exactly (port included)
        "https://app.example:8080",  # ...and scheme
        "http://11.0.0.1",  # outside 10.0.0.0/8
        "http://10.evil.example",  # a name that starts like the block is not in it
        "null",
    ],
)
def test_other_origins_are_refused(
    cors_server: Server, origin: str, table_counts: Callable[[], dict[str, int]]
) -> None:
    api = cors_server.api()
    preflight = api.request(
        "OPTIONS",
        "/api/v1/rooms",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    assert preflight.error_code() == "forbidden"
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-methods" not in preflight.headers

    before = table_counts()
    # A request that skips the preflight is refused too, before authentication or any write.
    direct = api.post("/api/v1/sessions", headers={"Origin": origin})
    assert direct.status == 403
    assert "access-control-allow-origin" not in direct.headers
    assert table_counts() == before


def test_requests_without_origin_are_not_cors(cors_server: Server) -> None:
    resp = cors_server.api().get("/healthz")
    assert resp.status == 200
    assert "access-control-allow-origin" not in resp.headers
    plain = cors_server.api().request("OPTIONS", "/api/v1/rooms/" + str(uuid.uuid4()))
    assert plain.status == 204
    assert plain.headers["allow"] == "GET, PATCH, OPTIONS"
