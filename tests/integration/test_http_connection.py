"""The HTTP connection itself, over raw sockets: a refused request leaves a kept-alive connection
usable (or says ``Connection: close``), oversized heads and bodies get JSON errors, and the
limits are the documented ones (docs/API.md, "HTTP limits and connections")."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.raw_http import RawConnection, RawResponse, request_bytes, request_head
from tests.servers import AgentCtx, Server, start_server, stop_server
from tests.servers import ScratchDatabase as PgDatabase

MAX_REQUEST_BYTES = 1_048_576  # the default the shared test server runs with
HEAD_LIMIT = 65_536
HEAD_HARD_LIMIT = 262_144
SMALL_BODY = json.dumps({"body": "x" * 1000}).encode()


def connect(server: Server, source: str | None = None) -> RawConnection:
    api = server.api()
    return RawConnection(api.host, api.port, source)


def assert_json_error(resp: RawResponse, status: int, code: str) -> None:
    assert resp.status == status, resp
    assert resp.error_code() == code, resp


def assert_still_usable(conn: RawConnection, resp: RawResponse) -> None:
    """The next request on this connection is answered: the refusal kept the connection."""
    assert not resp.closes, resp
    follow = conn.exchange(request_bytes("GET", "/healthz"))
    assert follow.status == 200, follow


@pytest.fixture
def room_path(admin: AgentCtx, make_room: Callable[..., dict[str, object]]) -> str:
    return f"/api/v1/rooms/{make_room(admin)['id']}/messages"


# --- a refusal before the body is read -----------------------------------------------------


def refusals(room_path: str, admin: AgentCtx) -> dict[str, tuple[bytes, int, str]]:
    """Requests that prepare() refuses, each with a body still to read, and the answer."""
    bad_jwt = {"Authorization": "Bearer not-a-jwt"}
    good = {"Authorization": f"Bearer {admin.jwt}"}
    return {
        "401-post": (request_bytes("POST", room_path, bad_jwt, SMALL_BODY), 401, "unauthorized"),
        "401-get": (request_bytes("GET", room_path, bad_jwt), 401, "unauthorized"),
        "403-origin": (
            request_bytes("POST", room_path, {**good, "Origin": "http://evil.example"}, SMALL_BODY),
            403,
            "forbidden",
        ),
        "404-post": (request_bytes("POST", "/api/v1/nothing", good, SMALL_BODY), 404, "not_found"),
        "405-put": (
            request_bytes("PUT", "/api/v1/rooms", good, SMALL_BODY),
            405,
            "method_not_allowed",
        ),
        "413-counted": (
            request_bytes("POST", room_path, good, b"x" * (MAX_REQUEST_BYTES + 1)),
            413,
            "payload_too_large",
        ),
    }


@pytest.mark.parametrize(
    "case", ["401-post", "401-get", "403-origin", "404-post", "405-put", "413-counted"]
)
def test_a_refused_request_keeps_the_connection_usable(
    server: Server, admin: AgentCtx, room_path: str, case: str
) -> None:
    raw, status, code = refusals(room_path, admin)[case]
    with connect(server) as conn:
        resp = conn.exchange(raw)
        assert_json_error(resp, status, code)
        assert_still_usable(conn, resp)


def test_a_refusal_announced_with_100_continue_is_answered_at_once_and_closes(
    server: Server, room_path: str
) -> None:
    """The client waits for "100 Continue" before sending the body: the refusal is the final
    answer, the body never comes, so the connection cannot be reused and says so."""
    head = request_head(
        "POST",
        room_path,
        {
            "Authorization": "Bearer not-a-jwt",
            "Content-Length": str(len(SMALL_BODY)),
            "Expect": "100-continue",
        },
    )
    with connect(server) as conn:
        resp = conn.exchange(head)
        assert_json_error(resp, 401, "unauthorized")
        assert resp.closes
        assert conn.peer_closed()


def test_a_successful_request_keeps_the_connection(server: Server, room_path: str, admin) -> None:
    good = {"Authorization": f"Bearer {admin.jwt}", "Content-Type": "application/json"}
    with connect(server) as conn:
        first = conn.exchange(request_bytes("POST", room_path, good, b'{"body": "one"}'))
        assert first.status == 201, first
        assert_still_usable(conn, first)


# --- bodies over the limit -------------------------------------------------------------------


def test_a_declared_body_far_over_the_limit_is_413_and_closes(
    server: Server, room_path: str, admin: AgentCtx
) -> None:
    """Beyond 4 x MAX_REQUEST_BYTES the body is not read at all: JSON 413, Connection: close."""
    declared = 4 * MAX_REQUEST_BYTES + 1
    head = request_head(
        "POST",
        room_path,
        {"Authorization": f"Bearer {admin.jwt}", "Content-Length": str(declared)},
    )
    with connect(server) as conn:
        resp = conn.exchange(head)
        assert_json_error(resp, 413, "payload_too_large")
        assert resp.json()["error"]["details"] == {"limit": MAX_REQUEST_BYTES}
        assert resp.closes
        assert conn.peer_closed()


def chunked(data: bytes, size: int = 65536) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        piece = data[start : start + size]
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


def send_in_background(conn: RawConnection, pieces: Iterator[bytes]) -> threading.Thread:
    """Keep sending while the test reads: the server may answer (and close) mid-body."""

    def run() -> None:
        try:
            for piece in pieces:
                conn.send(piece)
        except OSError:
            pass  # the server answered and closed before the end: expected past the drain cap

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_chunked_body_just_over_the_limit_is_413_and_keeps_the_connection(
    server: Server, room_path: str, admin: AgentCtx, table_counts
) -> None:
    before = table_counts()
    head = request_head(
        "POST",
        room_path,
        {"Authorization": f"Bearer {admin.jwt}", "Transfer-Encoding": "chunked"},
    )
    body = json.dumps({"body": "x" * (2 * MAX_REQUEST_BYTES)}).encode()
    with connect(server) as conn:
        sender = send_in_background(conn, iter([head, *chunked(body)]))
        resp = conn.read_response()
        sender.join(timeout=60)
        assert_json_error(resp, 413, "payload_too_large")
        assert_still_usable(conn, resp)
    assert table_counts() == before


def test_a_ten_megabyte_chunked_body_is_a_json_413(
    server: Server, room_path: str, admin: AgentCtx, table_counts
) -> None:
    """Past the drain cap (4 x MAX_REQUEST_BYTES) the answer comes at once, JSON, with
    ``Connection: close``; the rest of the upload is not read."""
    before = table_counts()
    head = request_head(
        "POST",
        room_path,
        {"Authorization": f"Bearer {admin.jwt}", "Transfer-Encoding": "chunked"},
    )
    with connect(server) as conn:
        sender = send_in_background(conn, iter([head, *chunked(b"x" * (10 * 1024 * 1024))]))
        resp = conn.read_response()
        assert_json_error(resp, 413, "payload_too_large")
        assert resp.closes
        sender.join(timeout=60)
    assert table_counts() == before


# --- oversized heads -------------------------------------------------------------------------


def test_a_head_just_under_the_limit_is_served(server: Server) -> None:
    with connect(server) as conn:
        pad = "p" * (HEAD_LIMIT - 1024)
        resp = conn.exchange(request_head("GET", "/healthz", {"X-Pad": pad}))
        assert resp.status == 200, resp


def test_a_request_line_over_64_kib_is_a_json_414(server: Server) -> None:
    path = "/api/v1/rooms?cursor=" + "c" * HEAD_LIMIT
    with connect(server) as conn:
        resp = conn.exchange(request_head("GET", path))
        assert_json_error(resp, 414, "uri_too_long")
        assert resp.json()["error"]["details"] == {"limit": HEAD_LIMIT}
        assert_still_usable(conn, resp)


def test_headers_over_64_kib_are_a_json_431(server: Server) -> None:
    headers = {f"X-Pad-{i}": "h" * 8000 for i in range(9)}
    with connect(server) as conn:
        resp = conn.exchange(request_bytes("POST", "/api/v1/rooms", headers, SMALL_BODY))
        assert_json_error(resp, 431, "headers_too_large")
        assert resp.json()["error"]["details"] == {"limit": HEAD_LIMIT}
        assert_still_usable(conn, resp)


def test_a_head_over_the_hard_limit_is_closed_without_an_answer(server: Server) -> None:
    """Documented: above 256 KiB the server stops reading and closes the connection."""
    headers = {f"X-Pad-{i}": "h" * 8000 for i in range(40)}
    with connect(server) as conn:
        conn.send(request_head("GET", "/healthz", headers))
        assert conn.peer_closed()


# --- rate limits and a bodied request ----------------------------------------------------------


@pytest.fixture(scope="module")
def limited(database: PgDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = dict(database.env, RATE_LIMIT_ANONYMOUS_PER_MINUTE="3")
    srv = start_server(env, tmp_path_factory.mktemp("limited-conn") / "agenthub.log")
    yield srv
    assert stop_server(srv) == 0


def test_a_rate_limited_post_keeps_the_connection_usable(limited: Server) -> None:
    path = f"/api/v1/rooms/{uuid.uuid4()}/messages"
    with connect(limited, source="127.0.0.41") as conn:
        for _ in range(10):
            resp = conn.exchange(request_bytes("POST", path, {}, SMALL_BODY))
            assert not resp.closes, resp
            if resp.status == 429:
                break
        assert_json_error(resp, 429, "rate_limited")
        # The follow-up is itself refused (429), but answered on the same connection.
        follow = conn.exchange(request_bytes("GET", "/api/v1/openapi.json"))
        assert follow.status == 429, follow
