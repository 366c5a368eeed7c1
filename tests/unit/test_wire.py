"""The wire form: each object's ``to_dict`` is its schema's dump, byte for byte the form the
clients have always received (same keys in the same order, ``Z`` timestamps, explicit nulls),
and every dump is valid against the component the OpenAPI document publishes for it."""

from __future__ import annotations

import functools
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jsonschema_rs
import pytest

from agenthub import wire
from agenthub.api.openapi import build_document
from agenthub.api.routes import HANDLERS
from agenthub.config import load_settings
from agenthub.models import (
    Agent,
    AuditEvent,
    IssuedToken,
    Member,
    Message,
    Room,
    SessionToken,
    TokenInfo,
)
from agenthub.services.messages import MessagePage

A = uuid.UUID("0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01")
B = uuid.UUID("6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02")
C = uuid.UUID("a1b2c3d4-e5f6-4789-8abc-def012345603")
T = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
T_WHOLE = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

AGENT = Agent(A, "alice", "Alice", "agent", False, T)
AGENT_WIRE = (
    '{"id": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", "name": "alice", "displayName": "Alice", '
    '"role": "agent", "disabled": false, "createdAt": "2024-05-01T12:00:00.123456Z"}'
)

# (object, its component in the document, its JSON exactly as the clients receive it)
SAMPLES: list[tuple[Any, str, str]] = [
    (AGENT, "Agent", AGENT_WIRE),
    (
        Agent(B, "root", "Root", "admin", True, T_WHOLE),
        "Agent",
        '{"id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02", "name": "root", "displayName": "Root", '
        '"role": "admin", "disabled": true, "createdAt": "2024-05-01T12:00:00Z"}',
    ),
    (
        TokenInfo("abc123", A, T, None, None, None),
        "TokenInfo",
        '{"prefix": "abc123", "agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"createdAt": "2024-05-01T12:00:00.123456Z", "expiresAt": null, "revokedAt": null, '
        '"lastUsedAt": null}',
    ),
    (
        TokenInfo("abc123", A, T, T_WHOLE, T, T_WHOLE),
        "TokenInfo",
        '{"prefix": "abc123", "agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"createdAt": "2024-05-01T12:00:00.123456Z", "expiresAt": "2024-05-01T12:00:00Z", '
        '"revokedAt": "2024-05-01T12:00:00.123456Z", "lastUsedAt": "2024-05-01T12:00:00Z"}',
    ),
    (
        IssuedToken("agt_abc123_secret", "abc123", A, None),
        "IssuedToken",
        '{"token": "agt_abc123_secret", "prefix": "abc123", '
        '"agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", "expiresAt": null}',
    ),
    (
        IssuedToken("agt_abc123_secret", "abc123", A, T),
        "IssuedToken",
        '{"token": "agt_abc123_secret", "prefix": "abc123", '
        '"agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"expiresAt": "2024-05-01T12:00:00.123456Z"}',
    ),
    (
        SessionToken("eyJ.x.y", T_WHOLE, AGENT),
        "Session",
        f'{{"token": "eyJ.x.y", "expiresAt": "2024-05-01T12:00:00Z", "agent": {AGENT_WIRE}}}',
    ),
    (
        Room(B, "lobby", "Lobby", "public", A, 7, T, True, "room", "plans", False, 5, 2, 1),
        "Room",
        '{"id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02", "slug": "lobby", "name": "Lobby", '
        '"visibility": "public", "createdBy": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"lastSeq": 7, "createdAt": "2024-05-01T12:00:00.123456Z", "member": true, '
        '"kind": "room", "topic": "plans", "archived": false, '
        '"lastReadSeq": 5, "unreadCount": 2, "unreadMentions": 1}',
    ),
    (
        Room(B, "ops", "Ops", "private", None, 0, T_WHOLE, False, "dm", "", True),
        "Room",
        '{"id": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02", "slug": "ops", "name": "Ops", '
        '"visibility": "private", "createdBy": null, "lastSeq": 0, '
        '"createdAt": "2024-05-01T12:00:00Z", "member": false, '
        '"kind": "dm", "topic": "", "archived": true, '
        '"lastReadSeq": null, "unreadCount": null, "unreadMentions": null}',
    ),
    (
        Member(A, "alice", "Alice", "agent", T),
        "Member",
        '{"agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", "name": "alice", '
        '"displayName": "Alice", "role": "agent", "joinedAt": "2024-05-01T12:00:00.123456Z", '
        '"online": false}',
    ),
    (
        Member(A, "alice", "Alice", "admin", T_WHOLE, online=True),
        "Member",
        '{"agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", "name": "alice", '
        '"displayName": "Alice", "role": "admin", "joinedAt": "2024-05-01T12:00:00Z", '
        '"online": true}',
    ),
    (
        Message(C, B, 1, A, 'héllo \u2603 "quoted"\n', None, T),
        "Message",
        '{"id": "a1b2c3d4-e5f6-4789-8abc-def012345603", '
        '"roomId": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02", "seq": 1, '
        '"senderId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"body": "h\\u00e9llo \\u2603 \\"quoted\\"\\n", "clientMsgId": null, '
        '"createdAt": "2024-05-01T12:00:00.123456Z", "kind": "text", "data": null, '
        '"replyTo": null, "threadRoot": null, "mentions": [], "mentionsRoom": false, '
        '"editedAt": null, "redactedAt": null, "replyCount": 0}',
    ),
    (
        Message(
            C,
            B,
            42,
            A,
            "",
            "client-1",
            T_WHOLE,
            kind="task.review",
            data={"files": ["a.py"], "n": 1.5},
            reply_to=40,
            thread_root=3,
            mentions=(A,),
            mentions_room=True,
            redacted_at=T_WHOLE,
            reply_count=2,
            room_slug="not-on-the-wire",
        ),
        "Message",
        '{"id": "a1b2c3d4-e5f6-4789-8abc-def012345603", '
        '"roomId": "6f1c2d3e-4a5b-4c6d-8e7f-901a2b3c4d02", "seq": 42, '
        '"senderId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", "body": "", '
        '"clientMsgId": "client-1", "createdAt": "2024-05-01T12:00:00Z", '
        '"kind": "task.review", "data": {"files": ["a.py"], "n": 1.5}, '
        '"replyTo": 40, "threadRoot": 3, '
        '"mentions": ["0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01"], "mentionsRoom": true, '
        '"editedAt": null, "redactedAt": "2024-05-01T12:00:00Z", "replyCount": 2}',
    ),
    (
        AuditEvent(C, "token.revoked", A, {"prefix": "abc123", "n": [1, None]}, T),
        "AuditEvent",
        '{"id": "a1b2c3d4-e5f6-4789-8abc-def012345603", "type": "token.revoked", '
        '"agentId": "0b7e0e59-5b5c-4a53-9d3e-7d0a5b0c1a01", '
        '"payload": {"prefix": "abc123", "n": [1, null]}, '
        '"createdAt": "2024-05-01T12:00:00.123456Z"}',
    ),
    (
        AuditEvent(C, "agent.created", None, {}, T_WHOLE),
        "AuditEvent",
        '{"id": "a1b2c3d4-e5f6-4789-8abc-def012345603", "type": "agent.created", '
        '"agentId": null, "payload": {}, "createdAt": "2024-05-01T12:00:00Z"}',
    ),
]

SCHEMA_FOR = {
    "Agent": wire.AGENT,
    "TokenInfo": wire.TOKEN_INFO,
    "IssuedToken": wire.ISSUED_TOKEN,
    "Session": wire.SESSION,
    "Room": wire.ROOM,
    "Member": wire.MEMBER,
    "Message": wire.MESSAGE,
    "AuditEvent": wire.AUDIT_EVENT,
}


@pytest.mark.parametrize("obj,component,expected", SAMPLES, ids=[s[1] for s in SAMPLES])
def test_to_dict_is_the_wire_form(obj: Any, component: str, expected: str) -> None:
    assert json.dumps(obj.to_dict()) == expected


@pytest.mark.parametrize("obj,component,expected", SAMPLES, ids=[s[1] for s in SAMPLES])
def test_the_schema_dumps_the_wire_form(obj: Any, component: str, expected: str) -> None:
    assert json.dumps(SCHEMA_FOR[component].dump(obj)) == expected


def test_the_direct_message_dict_is_the_schemas_dump() -> None:
    # Message.to_dict builds the dict without marshmallow (the hot path); MESSAGE stays the
    # description the OpenAPI document is made from. Same keys, order, values and types.
    for obj, component, _ in SAMPLES:
        if component == "Message":
            direct = wire.message_dict(obj)
            assert list(direct.items()) == list(wire.MESSAGE.dump(obj).items())
            assert json.dumps(direct) == json.dumps(wire.MESSAGE.dump(obj))


def test_timestamps_keep_their_offset_unless_utc() -> None:
    # PostgreSQL hands back UTC; an offset that is not UTC is written as it is, as before.
    plus_two = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    message = Message(C, B, 1, A, "x", None, plus_two)
    assert message.to_dict()["createdAt"] == "2024-05-01T14:00:00+02:00"
    assert wire.iso(None) is None


def test_the_envelopes_dump_what_the_handlers_send() -> None:
    room = SAMPLES[7][0]
    message = SAMPLES[11][0]
    event = SAMPLES[13][0]
    assert wire.AGENT_LIST.dump({"agents": [AGENT]}) == {"agents": [AGENT.to_dict()]}
    assert wire.ROOM_LIST.dump({"rooms": [room]}) == {"rooms": [room.to_dict()]}
    assert wire.MEMBER_LIST.dump({"members": []}) == {"members": []}
    token = SAMPLES[2][0]
    assert wire.TOKEN_LIST.dump({"tokens": [token]}) == {"tokens": [token.to_dict()]}
    page = MessagePage(messages=[message], next_cursor="c2", has_more=True)
    assert wire.MESSAGE_PAGE.dump(page) == {
        "messages": [message.to_dict()],
        "nextCursor": "c2",
        "hasMore": True,
    }
    assert wire.AUDIT_PAGE.dump({"events": [event], "next_cursor": None}) == {
        "events": [event.to_dict()],
        "nextCursor": None,
    }


@functools.cache
def _components() -> dict[str, Any]:
    doc = build_document(load_settings({"JWT_SECRET": "s" * 40}), HANDLERS)
    components: dict[str, Any] = doc["components"]
    return components


def _validator(component: str) -> Any:
    root = {"$ref": f"#/components/schemas/{component}", "components": _components()}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


@pytest.mark.parametrize("obj,component,expected", SAMPLES, ids=[s[1] for s in SAMPLES])
def test_every_dump_matches_its_documented_component(
    obj: Any, component: str, expected: str
) -> None:
    validator = _validator(component)
    dumped = SCHEMA_FOR[component].dump(obj)
    assert validator.is_valid(dumped), list(validator.iter_errors(dumped))
    # The document is strict: an extra key or a missing one is a contract violation.
    assert not validator.is_valid({**dumped, "extra": 1})
    assert not validator.is_valid({k: v for k, v in dumped.items() if k != next(iter(dumped))})
