"""Bad input on every route that takes a body or an id: always a 4xx JSON error, never a 500,
and nothing stored."""

from __future__ import annotations

import http.client
import json
import uuid
from dataclasses import dataclass

import pytest

from tests.helpers import Response


@dataclass
class Route:
    method: str
    path: str  # may contain {agent} and {room}
    valid: dict[str, object]  # a body that would succeed (proves the route is reachable)
    wrong_types: list[dict[str, object]]
    requires_fields: bool = True


ROUTES = {
    "create-agent": Route(
        "POST",
        "/api/v1/agents",
        {"name": "valid-name"},
        [{"name": 5}, {"name": ["a"]}, {"name": "ok-x", "role": 1}, {"name": None}],
    ),
    "patch-agent": Route(
        "PATCH",
        "/api/v1/agents/{agent}",
        {"disabled": False},
        [{"disabled": "true"}, {"disabled": 0}, {"disabled": []}],
    ),
    "issue-token": Route(
        "POST",
        "/api/v1/agents/{agent}/tokens",
        {},
        [{"expiresAt": 5}, {"expiresAt": {}}, {"expiresAt": "2099-13-01T00:00:00Z"}],
        requires_fields=False,
    ),
    "create-room": Route(
        "POST",
        "/api/v1/rooms",
        {"slug": "valid-slug"},
        [{"slug": 1}, {"slug": "ok-y", "visibility": True}, {"slug": "ok-z", "name": 3}],
    ),
    "add-member": Route(
        "POST",
        "/api/v1/rooms/{room}/members",
        {"agentId": "{agent}"},
        [{"agentId": 1}, {"agentId": "Not A Name"}, {"agentId": "x" * 65}],
        requires_fields=False,  # no agentId: the caller joins (tests/integration/test_addressing)
    ),
    "post-message": Route(
        "POST",
        "/api/v1/rooms/{room}/messages",
        {"body": "hi"},
        [{"body": 1}, {"body": ["x"]}, {"body": None}, {"body": "x", "clientMsgId": 7}],
    ),
}

MALFORMED = [
    b"{",
    b"{'single': 'quotes'}",
    b'{"body": "x",}',
    b"not json at all",
    b'{"body": NaN}',
    b'{"body": Infinity}',
    b"\xff\xfe\x00{",
]
NOT_OBJECTS = [b"[]", b'[{"body": "x"}]', b'"a string"', b"42", b"null", b"true"]


@dataclass
class Target:
    agent_id: str
    room_id: str

    def __call__(self, route: Route) -> str:
        return route.path.format(agent=self.agent_id, room=self.room_id)


@pytest.fixture
def target(admin, make_agent, make_room) -> Target:
    """An agent and a room the admin may act on, to fill a route's path."""
    return Target(make_agent().id, str(make_room(admin)["id"]))


def send(api, method: str, path: str, raw: bytes, content_type: str = "application/json"):
    return api.request(method, path, raw=raw, headers={"Content-Type": content_type})


def assert_json_error(resp: Response, status: int) -> None:
    assert resp.status == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert isinstance(resp.body, dict)
    error = resp.body["error"]
    assert isinstance(error["code"], str)
    assert isinstance(error["message"], str)
    assert "Traceback" not in resp.text


@pytest.mark.parametrize("name", list(ROUTES))
@pytest.mark.parametrize("raw", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_json_is_400(admin, target, table_counts, name, raw):
    route = ROUTES[name]
    before = table_counts()
    resp = send(admin.api, route.method, target(route), raw)
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    assert table_counts() == before


@pytest.mark.parametrize("name", list(ROUTES))
@pytest.mark.parametrize("raw", NOT_OBJECTS, ids=range(len(NOT_OBJECTS)))
def test_json_that_is_not_an_object_is_400(admin, target, table_counts, name, raw):
    route = ROUTES[name]
    before = table_counts()
    resp = send(admin.api, route.method, target(route), raw)
    assert_json_error(resp, 400)
    assert table_counts() == before


@pytest.mark.parametrize("name", list(ROUTES))
def test_wrong_types_are_400_with_field_details(admin, target, table_counts, name):
    route = ROUTES[name]
    for body in route.wrong_types:
        before = table_counts()
        resp = admin.api.request(route.method, target(route), body)
        assert_json_error(resp, 400)
        assert resp.body["error"]["details"], body
        assert table_counts() == before


@pytest.mark.parametrize("name", list(ROUTES))
def test_unknown_fields_are_400(admin, target, table_counts, name):
    route = ROUTES[name]
    body = {k: (target.agent_id if v == "{agent}" else v) for k, v in route.valid.items()}
    if "name" in body or "slug" in body:
        key = "name" if "name" in body else "slug"
        body[key] = f"u-{uuid.uuid4().hex[:8]}"
    body["isAdmin"] = True
    before = table_counts()
    resp = admin.api.request(route.method, target(route), body)
    assert_json_error(resp, 400)
    assert "isAdmin" in resp.body["error"]["details"]
    assert table_counts() == before


@pytest.mark.parametrize("name", [n for n, r in ROUTES.items() if r.requires_fields])
@pytest.mark.parametrize("raw", [b"", b"   ", b"{}"], ids=["empty", "blank", "empty-object"])
def test_empty_body_is_400(admin, target, table_counts, name, raw):
    route = ROUTES[name]
    before = table_counts()
    resp = send(admin.api, route.method, target(route), raw)
    assert_json_error(resp, 400)
    assert table_counts() == before


@pytest.mark.parametrize("name", list(ROUTES))
def test_two_megabyte_body_is_413(admin, target, table_counts, name):
    route = ROUTES[name]
    raw = json.dumps({"body": "x" * (2 * 1024 * 1024)}).encode()
    before = table_counts()
    resp = send(admin.api, route.method, target(route), raw)
    assert_json_error(resp, 413)
    assert resp.error_code() == "payload_too_large"
    assert table_counts() == before


def test_chunked_two_megabyte_body_is_413(server, admin, make_room, table_counts):
    """No Content-Length to check up front: the streamed body itself must be cut off."""
    room = make_room(admin)
    before = table_counts()
    chunk = b"x" * 65536
    payload = [b'{"body": "', *([chunk] * 32), b'"}']
    conn = http.client.HTTPConnection(server.api().host, server.api().port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/api/v1/rooms/{room['id']}/messages",
            body=iter(payload),
            headers={"Authorization": f"Bearer {admin.jwt}", "Content-Type": "application/json"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        status, text = resp.status, resp.read().decode()
    finally:
        conn.close()
    assert status == 413, text
    assert json.loads(text)["error"]["code"] == "payload_too_large"
    assert table_counts() == before


def test_body_accepted_without_json_content_type(admin, make_room):
    """curl -d sends application/x-www-form-urlencoded; the body is still JSON."""
    room = make_room(admin)
    resp = send(
        admin.api,
        "POST",
        f"/api/v1/rooms/{room['id']}/messages",
        b'{"body": "from curl"}',
        content_type="application/x-www-form-urlencoded",
    )
    assert resp.status == 201, resp.text


# Neither a UUID nor a slug / name ("nope" and "123" are valid slugs: unknown ones are 404).
BAD_IDS = ["Nope", "under_score", "00000000-0000-0000-0000-00000000000G", "%20", "' OR 1=1 --"]
ID_ROUTES = [
    ("GET", "/api/v1/agents/{}"),
    ("PATCH", "/api/v1/agents/{}"),
    ("GET", "/api/v1/agents/{}/tokens"),
    ("POST", "/api/v1/agents/{}/tokens"),
    ("GET", "/api/v1/rooms/{}"),
    ("GET", "/api/v1/rooms/{}/members"),
    ("POST", "/api/v1/rooms/{}/members"),
    ("DELETE", "/api/v1/rooms/{}/members/" + str(uuid.uuid4())),
    ("DELETE", "/api/v1/rooms/" + str(uuid.uuid4()) + "/members/{}"),
    ("GET", "/api/v1/rooms/{}/messages"),
    ("POST", "/api/v1/rooms/{}/messages"),
]


@pytest.mark.parametrize(("method", "path"), ID_ROUTES)
def test_bad_id_in_path_is_400(admin, table_counts, method, path):
    from urllib.parse import quote

    before = table_counts()
    for bad in BAD_IDS:
        body: dict[str, object] | None = {"disabled": True} if method == "PATCH" else None
        if method == "POST":
            body = {"body": "x"} if path.endswith("messages") else {}
        resp = admin.api.request(method, path.format(quote(bad, safe="")), body)
        assert_json_error(resp, 400)
        assert resp.body["error"]["details"]
    assert table_counts() == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", "/api/v1/rooms"),
        ("DELETE", "/api/v1/agents"),
        ("PATCH", "/api/v1/rooms"),
        ("POST", "/api/v1/audit"),
        ("GET", "/api/v1/sessions"),
    ],
)
def test_unsupported_method_is_405_json(admin, method, path):
    resp = admin.api.request(method, path, {})
    assert_json_error(resp, 405)


def test_garbage_authorization_header_is_401_json(server):
    for header in ["Bearer " + "a" * 8000, "bearer", "Bearer a b c"]:
        resp = server.api().request("GET", "/api/v1/rooms", headers={"Authorization": header})
        assert_json_error(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")


def test_server_log_has_no_traceback(server):
    assert "Traceback" not in server.log_text()


# --- strings that are not valid Unicode ---------------------------------------------------

LONE = "a\ud800b"  # JSON can carry it ("a\\ud800b"); UTF-8, and so PostgreSQL, cannot

SURROGATES = {
    "agent-name": ("create-agent", {"name": LONE}, "name"),
    "agent-displayName": ("create-agent", {"name": "ok-d", "displayName": LONE}, "displayName"),
    "agent-role": ("create-agent", {"name": "ok-r", "role": "\udfff"}, "role"),
    "room-slug": ("create-room", {"slug": LONE}, "slug"),
    "room-name": ("create-room", {"slug": "ok-n", "name": LONE}, "name"),
    "room-visibility": ("create-room", {"slug": "ok-v", "visibility": LONE}, "visibility"),
    "message-body": ("post-message", {"body": LONE}, "body"),
    "message-clientMsgId": ("post-message", {"body": "x", "clientMsgId": LONE}, "clientMsgId"),
    "token-expiresAt": ("issue-token", {"expiresAt": LONE}, "expiresAt"),
    "member-agentId": ("add-member", {"agentId": LONE}, "agentId"),
    "key": ("post-message", {"body": "x", "b\ud800": "y"}, "b\\ud800"),
}


@pytest.mark.parametrize("case", list(SURROGATES))
def test_a_lone_surrogate_in_any_string_is_400_naming_the_field(admin, target, table_counts, case):
    name, body, field = SURROGATES[case]
    route = ROUTES[name]
    before = table_counts()
    # ensure_ascii (the default) writes the surrogate as the JSON escape \ud800
    resp = send(admin.api, route.method, target(route), json.dumps(body).encode())
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    assert list(resp.body["error"]["details"]) == [field], resp.text
    assert "surrogate" in resp.body["error"]["details"][field][0]
    assert table_counts() == before


def test_a_lone_surrogate_over_the_socket_is_a_validation_ack(server, admin, make_room, sql):
    from tests.realtime_support import Socket, error_code, ok, run

    room = make_room(admin)

    async def scenario() -> None:
        sock = Socket(server.base_url)
        try:
            await sock.connect(admin.jwt)
            for payload, field in [
                ({"roomId": room["id"], "body": LONE}, "body"),
                ({"roomId": room["id"], "body": "x", "clientMsgId": LONE}, "clientMsgId"),
            ]:
                ack = await sock.call("message:send", payload)
                assert error_code(ack) == "validation_failed", ack
                assert list(ack["error"]["details"]) == [field], ack
            ok(await sock.call("message:send", {"roomId": room["id"], "body": "fine"}))
        finally:
            await sock.close()

    run(scenario())
    stored = sql("SELECT body FROM messages WHERE room_id = %s", room["id"])
    assert stored == [("fine",)]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit?type=%ED%A0%80",  # the CESU-8 bytes of U+D800: not UTF-8
        "/api/v1/audit?cursor=%FF",
        "/api/v1/rooms/{room}/messages?cursor=%C3",
    ],
)
def test_query_parameters_that_are_not_utf8_are_400_naming_the_parameter(admin, target, path):
    resp = admin.api.get(path.format(room=target.room_id))
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    name = path.split("?", 1)[1].split("=", 1)[0]
    assert resp.body["error"]["details"] == {name: ["not valid UTF-8"]}


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/rooms/%ED%A0%80", "id"),
        ("POST", "/api/v1/rooms/%FF/messages", "id"),
        ("DELETE", "/api/v1/rooms/{room}/members/%FF%FE", "agentId"),
    ],
)
def test_path_segments_that_are_not_utf8_are_400_invalid_ids(admin, target, method, path, field):
    body = {"body": "x"} if method == "POST" else None
    resp = admin.api.request(method, path.format(room=target.room_id), body)
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    assert resp.body["error"]["details"] == {
        field: ["an id (UUID) or a name (lowercase letters, digits and '-')"]
    }


# --- nesting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"[" * 1000, b'{"body":' * 1000, b"[" * 100_000])
def test_deeply_nested_json_is_400(admin, target, table_counts, raw):
    route = ROUTES["post-message"]
    before = table_counts()
    resp = send(admin.api, route.method, target(route), raw)
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    assert table_counts() == before


def test_nesting_the_parser_accepts_is_still_400(admin, target, table_counts):
    """Deep but parseable: the checks after the parser must not recurse either."""
    route = ROUTES["post-message"]
    nested: object = "x"
    for _ in range(900):
        nested = [nested]
    before = table_counts()
    resp = send(admin.api, route.method, target(route), json.dumps({"body": nested}).encode())
    assert_json_error(resp, 400)
    assert "body" in resp.body["error"]["details"]
    assert table_counts() == before


# --- token expiry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expires",
    [
        "9999-12-31T23:59:59-14:00",  # year 10000 in UTC
        "9999-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
    ],
)
def test_expiry_beyond_ten_years_is_400_with_the_allowed_range(
    admin, target, table_counts, expires
):
    before = table_counts()
    resp = admin.api.post(f"/api/v1/agents/{target.agent_id}/tokens", {"expiresAt": expires})
    assert_json_error(resp, 400)
    assert resp.error_code() == "validation_failed"
    assert "10 years" in resp.body["error"]["message"]
    (detail,) = resp.body["error"]["details"]["expiresAt"]
    assert "at most" in detail
    assert table_counts() == before


def test_expiry_just_under_ten_years_is_accepted(admin, target):
    from datetime import UTC, datetime, timedelta

    expires = (datetime.now(UTC) + timedelta(days=3650)).isoformat()
    resp = admin.api.post(f"/api/v1/agents/{target.agent_id}/tokens", {"expiresAt": expires})
    assert resp.status == 201, resp.text


def test_cli_refuses_an_expiry_beyond_ten_years(server, admin):
    from tests.servers import run_cli

    done = run_cli(
        server.env, "token", "issue", "--agent", admin.name, "--expires", "4000d", check=False
    )
    assert done.returncode != 0
    # A duration is checked as the flag is parsed; the rule is in the message.
    assert "--expires: expiry '4000d' is too far ahead: at most 3653d" in done.stderr
    assert "Traceback" not in done.stderr

    iso = run_cli(
        server.env,
        "token",
        "issue",
        "--agent",
        admin.name,
        "--expires",
        "9999-12-31T23:59:59-14:00",
        check=False,
    )
    assert iso.returncode != 0
    # A date goes to the service; the CLI names its flag and the allowed range (the API's
    # message names expiresAt).
    assert "--expires: must be after " in iso.stderr
    assert " and at most " in iso.stderr
    assert "Traceback" not in iso.stderr
