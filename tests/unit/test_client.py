"""agenthub.client without a server: what it imports, the error mapping, the retry policy,
the models, and that no credential reaches a repr."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from agenthub.client import (
    AgentHubError,
    AsyncAgentHub,
    Conflict,
    ConnectionFailed,
    Forbidden,
    Inbox,
    Message,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RetryPolicy,
    Room,
    ServerError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from agenthub.client.errors import from_envelope
from agenthub.client.models import IssuedToken, Session
from agenthub.client.session import jwt_lifetime

SERVER_ONLY = ("aiopg", "psycopg2", "tornado", "sqlalchemy", "alembic", "marshmallow", "socketio")


def test_importing_the_client_loads_no_server_module():
    code = (
        "import sys, agenthub.client\n"
        "hub = agenthub.client.AgentHub('http://127.0.0.1:9', 'agt_x_y')\n"
        "hub.close()\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_ONLY!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def _envelope(code: str, message: str = "m", **details: object) -> dict[str, object]:
    body: dict[str, object] = {"code": code, "message": message}
    if details:
        body["details"] = details
    return {"error": body}


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "validation_failed", ValidationFailed),
        (401, "unauthorized", Unauthorized),
        (403, "forbidden", Forbidden),
        (404, "not_found", NotFound),
        (409, "conflict", Conflict),
        (409, "room_archived", Conflict),
        (413, "payload_too_large", PayloadTooLarge),
        (429, "rate_limited", RateLimited),
        (503, "unavailable", Unavailable),
        (503, "too_many_waiters", Unavailable),
        (500, "internal", ServerError),
    ],
)
def test_each_error_code_has_its_exception(status, code, cls):
    err = from_envelope(_envelope(code, "why"), status)
    assert type(err) is cls
    assert (err.code, err.message, err.status) == (code, "why", status)
    assert str(err) == f"{code}: why (HTTP {status})"


def test_an_answer_that_is_not_agenthubs_maps_by_status():
    assert type(from_envelope(None, 502)) is ServerError
    assert type(from_envelope("<html>", 404)) is NotFound
    assert type(from_envelope(None, 418)) is AgentHubError


def test_retry_after_comes_from_the_header_or_the_details():
    err = from_envelope(_envelope("rate_limited", retryAfter=7), 429, "12")
    assert isinstance(err, RateLimited) and err.retry_after == 12.0
    err = from_envelope(_envelope("rate_limited", retryAfter=7), 429)
    assert isinstance(err, RateLimited) and err.retry_after == 7.0
    err = from_envelope(_envelope("too_many_waiters", retryAfter=1, limit=10), 503, "1")
    assert isinstance(err, Unavailable) and err.retry_after == 1.0
    assert from_envelope(_envelope("payload_too_large", limit=99), 413).limit == 99  # type: ignore[attr-defined]


def test_retry_policy():
    policy = RetryPolicy(attempts=3, base_delay=0.1, max_delay=1.0, max_retry_after=5)
    assert 0.05 <= (policy.delay(1, ConnectionFailed(None, "x")) or 0) <= 0.1
    assert 0.1 <= (policy.delay(2, ServerError(None, "x", 500)) or 0) <= 0.2
    assert policy.delay(3, ConnectionFailed(None, "x")) is None  # attempts spent
    assert policy.delay(1, NotFound(None, "x", 404)) is None  # not worth retrying
    assert (policy.delay(1, RateLimited(None, "x", 429, retry_after=2)) or 0) >= 2
    assert policy.delay(1, RateLimited(None, "x", 429, retry_after=60)) is None
    assert all(policy.backoff(n) <= 1.0 for n in range(1, 20))


MESSAGE = {
    "id": "6f1c",
    "roomId": "r1",
    "seq": 3,
    "senderId": "a1",
    "body": "hi",
    "clientMsgId": None,
    "createdAt": "2026-11-29T05:01:02.123456Z",
    "kind": "text",
    "data": None,
    "replyTo": None,
    "threadRoot": None,
    "mentions": ["b2"],
    "mentionsRoom": False,
    "editedAt": None,
    "redactedAt": None,
    "replyCount": 0,
}
ROOM = {
    "id": "r1",
    "slug": "general",
    "name": "General",
    "visibility": "public",
    "createdBy": None,
    "lastSeq": 3,
    "createdAt": "2026-11-29T05:00:00Z",
    "member": True,
    "kind": "room",
    "topic": "",
    "archived": False,
}


def test_models_read_the_wire_form():
    msg = Message.from_json(MESSAGE)
    assert msg.seq == 3 and msg.mentions == ("b2",) and not msg.redacted
    assert msg.created_at == datetime(2026, 11, 29, 5, 1, 2, 123456, tzinfo=UTC)
    assert msg.raw == MESSAGE
    room = Room.from_json(ROOM)  # a server without read state
    assert room.last_read_seq is None and room.unread_count is None
    room = Room.from_json(dict(ROOM, lastReadSeq=1, unreadCount=2, unreadMentions=1))
    assert (room.last_read_seq, room.unread_count, room.unread_mentions) == (1, 2, 1)
    inbox = Inbox.from_json(
        {
            "rooms": [
                {"room": ROOM, "unreadCount": 2, "unreadMentions": 0, "lastMessage": MESSAGE}
            ],
            "totalUnread": 2,
        }
    )
    assert inbox.total_unread == 2 and inbox.rooms[0].last_message == msg


def test_no_credential_in_a_repr():
    hub = AsyncAgentHub("http://hub:3000/", "agt_abc_SECRETSECRET")
    assert "SECRET" not in repr(hub) and "SECRET" not in repr(hub.session)
    session = Session.from_json(
        {
            "token": "eyJ.SECRETJWT.sig",
            "expiresAt": "2026-11-29T05:15:00Z",
            "agent": {
                "id": "a1",
                "name": "alice",
                "displayName": "Alice",
                "role": "agent",
                "disabled": False,
                "createdAt": "2026-11-29T05:00:00Z",
            },
        }
    )
    assert "SECRETJWT" not in repr(session) and "SECRETJWT" not in str(session.raw)
    issued = IssuedToken.from_json(
        {"token": "agt_p_SECRETSECRET", "prefix": "p", "agentId": "a1", "expiresAt": None}
    )
    assert "SECRET" not in repr(issued)


def test_jwt_lifetime_reads_iat_and_exp():
    import base64
    import json

    claims = base64.urlsafe_b64encode(json.dumps({"iat": 100, "exp": 1000}).encode()).rstrip(b"=")
    assert jwt_lifetime(f"eyJhbGciOiJIUzI1NiJ9.{claims.decode()}.sig") == 900
    assert jwt_lifetime("not a jwt") is None
