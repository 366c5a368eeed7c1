"""The wire form: one marshmallow schema per object AgentHub sends, REST and sockets alike.

These schemas are the single description of each response body. ``models.*.to_dict`` dumps
through them, and ``api/openapi.py`` derives the OpenAPI document from them (apispec), so what
is sent and what is documented cannot drift apart. Every field is always present (``null``
when empty) and nothing else is; timestamps are ISO 8601 in UTC ending in ``Z``.

Dump with the module-level instances (``MESSAGE`` …), never a new schema per call: building
one costs several times what a dump does, and a ``Message`` is dumped for every post, listed
message and broadcast.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from agenthub.domain import MESSAGE_KIND_PATTERN, ROLES, ROOM_KINDS, VISIBILITIES


def iso(value: datetime | None) -> str | None:
    """``2024-05-01T12:00:00.123456Z``: the one timestamp format on the wire."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


class Timestamp(fields.DateTime):
    """A ``DateTime`` (documented as ``date-time``) written by ``iso``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return iso(value)


class WireSchema(Schema):
    """A response body: every field present, none added (``additionalProperties: false``)."""

    class Meta:
        unknown = RAISE

    def serialize(self, obj: object) -> dict[str, Any]:
        """``dump`` with the type it has here: one JSON object."""
        data: dict[str, Any] = self.dump(obj)
        return data


ROLE = validate.OneOf(ROLES)
VISIBILITY = validate.OneOf(VISIBILITIES)


class AgentSchema(WireSchema):
    id = fields.UUID(required=True)
    name = fields.String(required=True)
    display_name = fields.String(required=True, data_key="displayName")
    role = fields.String(required=True, validate=ROLE)
    disabled = fields.Boolean(required=True)
    created_at = Timestamp(required=True, data_key="createdAt")


class AgentListSchema(WireSchema):
    agents = fields.Nested(AgentSchema, many=True, required=True)


class TokenInfoSchema(WireSchema):
    """An API token's metadata; the secret is never shown again."""

    prefix = fields.String(required=True)
    agent_id = fields.UUID(required=True, data_key="agentId")
    created_at = Timestamp(required=True, data_key="createdAt")
    expires_at = Timestamp(required=True, allow_none=True, data_key="expiresAt")
    revoked_at = Timestamp(required=True, allow_none=True, data_key="revokedAt")
    last_used_at = Timestamp(required=True, allow_none=True, data_key="lastUsedAt")


class TokenListSchema(WireSchema):
    tokens = fields.Nested(TokenInfoSchema, many=True, required=True)


class IssuedTokenSchema(WireSchema):
    """The new API token, shown this once."""

    token = fields.String(required=True)
    prefix = fields.String(required=True)
    agent_id = fields.UUID(required=True, data_key="agentId")
    expires_at = Timestamp(required=True, allow_none=True, data_key="expiresAt")


class SessionSchema(WireSchema):
    """A session JWT for ``Authorization: Bearer``."""

    token = fields.String(required=True)
    expires_at = Timestamp(required=True, data_key="expiresAt")
    agent = fields.Nested(AgentSchema, required=True)


class RoomSchema(WireSchema):
    id = fields.UUID(required=True)
    slug = fields.String(required=True)
    name = fields.String(required=True)
    visibility = fields.String(required=True, validate=VISIBILITY)
    created_by = fields.UUID(required=True, allow_none=True, data_key="createdBy")
    last_seq = fields.Integer(required=True, validate=validate.Range(min=0), data_key="lastSeq")
    created_at = Timestamp(required=True, data_key="createdAt")
    member = fields.Boolean(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(ROOM_KINDS))
    topic = fields.String(required=True)
    archived = fields.Boolean(required=True)
    last_read_seq = fields.Integer(
        required=True,
        allow_none=True,
        validate=validate.Range(min=0),
        data_key="lastReadSeq",
        metadata={
            "description": "the caller's read marker (messages after it are unread); null "
            "when the caller is not a member, and in room:updated"
        },
    )
    unread_count = fields.Integer(
        required=True,
        allow_none=True,
        validate=validate.Range(min=0),
        data_key="unreadCount",
        metadata={
            "description": "messages after lastReadSeq not sent by the caller, tombstones "
            "left out; null when the caller is not a member, and in room:updated"
        },
    )
    unread_mentions = fields.Integer(
        required=True,
        allow_none=True,
        validate=validate.Range(min=0),
        data_key="unreadMentions",
        metadata={
            "description": "messages after lastReadSeq that mention the caller (by name or "
            "@room); null when the caller is not a member, and in room:updated"
        },
    )


class RoomListSchema(WireSchema):
    rooms = fields.Nested(RoomSchema, many=True, required=True)


class MemberSchema(WireSchema):
    agent_id = fields.UUID(required=True, data_key="agentId")
    name = fields.String(required=True)
    display_name = fields.String(required=True, data_key="displayName")
    role = fields.String(required=True, validate=ROLE)
    joined_at = Timestamp(required=True, data_key="joinedAt")
    online = fields.Boolean(required=True)


class MemberListSchema(WireSchema):
    members = fields.Nested(MemberSchema, many=True, required=True)


class MessageSchema(WireSchema):
    id = fields.UUID(required=True)
    room_id = fields.UUID(required=True, data_key="roomId")
    seq = fields.Integer(required=True, validate=validate.Range(min=1))
    sender_id = fields.UUID(required=True, data_key="senderId")
    body = fields.String(required=True)
    client_msg_id = fields.String(required=True, allow_none=True, data_key="clientMsgId")
    created_at = Timestamp(required=True, data_key="createdAt")
    kind = fields.String(required=True, validate=validate.Regexp(MESSAGE_KIND_PATTERN))
    data = fields.Dict(required=True, allow_none=True)
    reply_to = fields.Integer(required=True, allow_none=True, data_key="replyTo")
    thread_root = fields.Integer(required=True, allow_none=True, data_key="threadRoot")
    mentions = fields.List(fields.UUID(), required=True)
    mentions_room = fields.Boolean(required=True, data_key="mentionsRoom")
    edited_at = Timestamp(required=True, allow_none=True, data_key="editedAt")
    redacted_at = Timestamp(required=True, allow_none=True, data_key="redactedAt")
    reply_count = fields.Integer(
        required=True,
        data_key="replyCount",
        metadata={"description": "replies in its thread, when it is a thread's root; else 0"},
    )


def message_dict(m: Any) -> dict[str, Any]:
    """What ``MESSAGE.dump(m)`` gives, built directly: a message is dumped for every post,
    send and broadcast, and marshmallow's dump costs more than all the rest of the dict's
    making. tests/unit/test_wire.py holds both to the same wire form, byte for byte."""
    data = m.data
    return {
        "id": str(m.id),
        "roomId": str(m.room_id),
        "seq": m.seq,
        "senderId": str(m.sender_id),
        "body": m.body,
        "clientMsgId": m.client_msg_id,
        "createdAt": iso(m.created_at),
        "kind": m.kind,
        "data": None if data is None else dict(data),
        "replyTo": m.reply_to,
        "threadRoot": m.thread_root,
        "mentions": [str(agent) for agent in m.mentions],
        "mentionsRoom": m.mentions_room,
        "editedAt": iso(m.edited_at),
        "redactedAt": iso(m.redacted_at),
        "replyCount": m.reply_count,
    }


class MessagePageSchema(WireSchema):
    messages = fields.Nested(MessageSchema, many=True, required=True)
    next_cursor = fields.String(required=True, allow_none=True, data_key="nextCursor")
    has_more = fields.Boolean(required=True, data_key="hasMore")


class RoomLabelSchema(WireSchema):
    """The room an item of a listing across rooms is in."""

    id = fields.UUID(required=True)
    slug = fields.String(required=True)


class MentionSchema(WireSchema):
    """A message that mentions the caller, and its room."""

    message = fields.Nested(MessageSchema, required=True)
    room = fields.Nested(RoomLabelSchema, required=True)


class MentionPageSchema(WireSchema):
    mentions = fields.Nested(MentionSchema, many=True, required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        data_key="nextCursor",
        metadata={
            "description": "newest first: the next (older) page, null after the last; with "
            "after: where to go on from, always given"
        },
    )


class SearchResultSchema(WireSchema):
    message = fields.Nested(MessageSchema, required=True)
    room = fields.Nested(RoomLabelSchema, required=True)
    highlight = fields.String(
        required=True,
        metadata={
            "description": "the body as plain text (whole when short, else up to three "
            "excerpts joined by ' … ') with each match between « and »"
        },
    )


class SearchPageSchema(WireSchema):
    results = fields.Nested(SearchResultSchema, many=True, required=True)
    next_cursor = fields.String(required=True, allow_none=True, data_key="nextCursor")


class ReadMarkSchema(WireSchema):
    """A member's read marker in a room."""

    room_id = fields.UUID(required=True, data_key="roomId")
    last_read_seq = fields.Integer(
        required=True, validate=validate.Range(min=0), data_key="lastReadSeq"
    )


class InboxEntrySchema(WireSchema):
    """One of the caller's rooms with something unread."""

    room = fields.Nested(RoomSchema, required=True)
    unread_count = fields.Integer(
        required=True, validate=validate.Range(min=0), data_key="unreadCount"
    )
    unread_mentions = fields.Integer(
        required=True, validate=validate.Range(min=0), data_key="unreadMentions"
    )
    last_message = fields.Nested(
        MessageSchema,
        required=True,
        allow_none=True,
        data_key="lastMessage",
        metadata={"description": "the room's newest message that is not a tombstone"},
    )


class InboxSchema(WireSchema):
    """The caller's rooms with something unread, most recent first."""

    rooms = fields.Nested(InboxEntrySchema, many=True, required=True)
    total_unread = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        data_key="totalUnread",
        metadata={"description": "the sum of the rooms' unreadCount"},
    )


class AuditEventSchema(WireSchema):
    id = fields.UUID(required=True)
    type = fields.String(required=True)
    agent_id = fields.UUID(required=True, allow_none=True, data_key="agentId")
    payload = fields.Dict(required=True)
    created_at = Timestamp(required=True, data_key="createdAt")


class AuditPageSchema(WireSchema):
    events = fields.Nested(AuditEventSchema, many=True, required=True)
    next_cursor = fields.String(required=True, allow_none=True, data_key="nextCursor")


class ErrorBodySchema(WireSchema):
    code = fields.String(required=True)
    message = fields.String(required=True)
    # Field name -> list of messages; the numbers ``limit`` (413, 414, 431) and ``retryAfter``
    # (429) are the only other values (docs/adr/0003-error-format.md).
    details = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={
            "description": "field -> list of messages; limit and retryAfter are numbers",
        },
    )


class ErrorSchema(WireSchema):
    """Every error, on every route (docs/adr/0003-error-format.md)."""

    error = fields.Nested(ErrorBodySchema, required=True)


class HealthSchema(WireSchema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))
    uptime = fields.Float(required=True)


class ReadinessSchema(WireSchema):
    status = fields.String(required=True, validate=validate.OneOf(["ready", "unavailable"]))
    checks = fields.Dict(required=True)


AGENT = AgentSchema()
AGENT_LIST = AgentListSchema()
TOKEN_INFO = TokenInfoSchema()
TOKEN_LIST = TokenListSchema()
ISSUED_TOKEN = IssuedTokenSchema()
SESSION = SessionSchema()
ROOM = RoomSchema()
ROOM_LIST = RoomListSchema()
MEMBER = MemberSchema()
MEMBER_LIST = MemberListSchema()
MESSAGE = MessageSchema()
MESSAGE_PAGE = MessagePageSchema()
MENTION = MentionSchema()
MENTION_PAGE = MentionPageSchema()
SEARCH_PAGE = SearchPageSchema()
READ_MARK = ReadMarkSchema()
INBOX = InboxSchema()
AUDIT_EVENT = AuditEventSchema()
AUDIT_PAGE = AuditPageSchema()
