"""Typed results: one frozen dataclass per object the server sends (docs/API.md).

Each has ``from_json(obj)`` taking the decoded JSON object, and keeps that object in ``raw``
(not compared, not in the repr) for callers that want to print or forward exactly what the
server said (``ah --json``). Field names are the wire's in snake_case; timestamps are
``datetime`` in UTC; ids stay strings (as on the wire). Fields a newer server adds are ignored;
fields an older server lacks (the read state) are ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = dict[str, Any]


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    return datetime.fromisoformat(str(value))


def _req_time(value: Any) -> datetime:
    parsed = _time(value)
    if parsed is None:
        raise ValueError("a timestamp is missing")
    return parsed


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> Agent:
        return cls(
            id=str(obj["id"]),
            name=obj["name"],
            display_name=obj["displayName"],
            role=obj["role"],
            disabled=bool(obj["disabled"]),
            created_at=_req_time(obj["createdAt"]),
            raw=obj,
        )


@dataclass(frozen=True)
class Session:
    """A session JWT. ``token`` is a credential: it is left out of the repr."""

    token: str = field(repr=False)
    expires_at: datetime
    agent: Agent
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> Session:
        return cls(
            token=obj["token"],
            expires_at=_req_time(obj["expiresAt"]),
            agent=Agent.from_json(obj["agent"]),
            raw={k: v for k, v in obj.items() if k != "token"},
        )


@dataclass(frozen=True)
class IssuedToken:
    """A new API token, shown this once. ``token`` is left out of the repr."""

    token: str = field(repr=False)
    prefix: str
    agent_id: str
    expires_at: datetime | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> IssuedToken:
        return cls(
            token=obj["token"],
            prefix=obj["prefix"],
            agent_id=str(obj["agentId"]),
            expires_at=_time(obj.get("expiresAt")),
            raw={k: v for k, v in obj.items() if k != "token"},
        )


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    agent_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> TokenInfo:
        return cls(
            prefix=obj["prefix"],
            agent_id=str(obj["agentId"]),
            created_at=_req_time(obj["createdAt"]),
            expires_at=_time(obj.get("expiresAt")),
            revoked_at=_time(obj.get("revokedAt")),
            last_used_at=_time(obj.get("lastUsedAt")),
            raw=obj,
        )


@dataclass(frozen=True)
class Room:
    """A room. ``last_read_seq``, ``unread_count`` and ``unread_mentions`` are the caller's
    read state: ``None`` when the caller is not a member (or the server predates read state)."""

    id: str
    slug: str
    name: str
    visibility: str
    created_by: str | None
    last_seq: int
    created_at: datetime
    member: bool
    kind: str
    topic: str
    archived: bool
    last_read_seq: int | None = None
    unread_count: int | None = None
    unread_mentions: int | None = None
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> Room:
        return cls(
            id=str(obj["id"]),
            slug=obj["slug"],
            name=obj["name"],
            visibility=obj["visibility"],
            created_by=None if obj.get("createdBy") is None else str(obj["createdBy"]),
            last_seq=int(obj["lastSeq"]),
            created_at=_req_time(obj["createdAt"]),
            member=bool(obj.get("member", False)),
            kind=obj.get("kind", "room"),
            topic=obj.get("topic", ""),
            archived=bool(obj.get("archived", False)),
            last_read_seq=_opt_int(obj.get("lastReadSeq")),
            unread_count=_opt_int(obj.get("unreadCount")),
            unread_mentions=_opt_int(obj.get("unreadMentions")),
            raw=obj,
        )


@dataclass(frozen=True)
class RoomLabel:
    """The room an item of a listing across rooms is in."""

    id: str
    slug: str

    @classmethod
    def from_json(cls, obj: JSON) -> RoomLabel:
        return cls(id=str(obj["id"]), slug=obj["slug"])


@dataclass(frozen=True)
class Member:
    agent_id: str
    name: str
    display_name: str
    role: str
    joined_at: datetime
    online: bool
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: JSON) -> Member:
        return cls(
            agent_id=str(obj["agentId"]),
            name=obj["name"],
            display_name=obj["displayName"],
            role=obj["role"],
            joined_at=_req_time(obj["joinedAt"]),
            online=bool(obj.get("online", False)),
            raw=obj,
        )


@dataclass(frozen=True)
class Message:
    id: str
    room_id: str
    seq: int
    sender_id: str
    body: str
    client_msg_id: str | None
    created_at: datetime
    kind: str = "text"
    data: JSON | None = None
    reply_to: int | None = None
    thread_root: int | None = None
    mentions: tuple[str, ...] = ()
    mentions_room: bool = False
    edited_at: datetime | None = None
    redacted_at: datetime | None = None
    reply_count: int = 0
    raw: JSON = field(default_factory=dict, repr=False, compare=False)

    @property
    def redacted(self) -> bool:
        """A tombstone: its body and data are gone."""
        return self.redacted_at is not None

    @classmethod
    def from_json(cls, obj: JSON) -> Message:
        return cls(
            id=str(obj["id"]),
            room_id=str(obj["roomId"]),
            seq=int(obj["seq"]),
            sender_id=str(obj["senderId"]),
            body=obj["body"],
            client_msg_id=obj.get("clientMsgId"),
            created_at=_req_time(obj["createdAt"]),
            kind=obj.get("kind", "text"),
            data=obj.get("data"),
            reply_to=_opt_int(obj.get("replyTo")),
            thread_root=_opt_int(obj.get("threadRoot")),
            mentions=tuple(str(m) for m in obj.get("mentions") or ()),
            mentions_room=bool(obj.get("mentionsRoom", False)),
            edited_at=_time(obj.get("editedAt")),
            redacted_at=_time(obj.get("redactedAt")),
            reply_count=int(obj.get("replyCount") or 0),
            raw=obj,
        )


@dataclass(frozen=True)
class MessagePage:
    """A page of a room's messages: newest first with ``cursor``, oldest first with ``after``
    (and for threads). ``next_cursor`` goes back as ``cursor``; with ``after``, ask again from
    the last seq while ``has_more``."""

    messages: list[Message]
    next_cursor: str | None
    has_more: bool

    @classmethod
    def from_json(cls, obj: JSON) -> MessagePage:
        return cls(
            messages=[Message.from_json(m) for m in obj["messages"]],
            next_cursor=obj.get("nextCursor"),
            has_more=bool(obj.get("hasMore", False)),
        )


@dataclass(frozen=True)
class Mention:
    """A message that mentions the caller, and its room."""

    message: Message
    room: RoomLabel

    @classmethod
    def from_json(cls, obj: JSON) -> Mention:
        return cls(message=Message.from_json(obj["message"]), room=RoomLabel.from_json(obj["room"]))


@dataclass(frozen=True)
class MentionPage:
    mentions: list[Mention]
    next_cursor: str | None

    @classmethod
    def from_json(cls, obj: JSON) -> MentionPage:
        return cls(
            mentions=[Mention.from_json(m) for m in obj["mentions"]],
            next_cursor=obj.get("nextCursor"),
        )


@dataclass(frozen=True)
class SearchResult:
    message: Message
    room: RoomLabel
    highlight: str

    @classmethod
    def from_json(cls, obj: JSON) -> SearchResult:
        return cls(
            message=Message.from_json(obj["message"]),
            room=RoomLabel.from_json(obj["room"]),
            highlight=obj.get("highlight", ""),
        )


@dataclass(frozen=True)
class SearchPage:
    results: list[SearchResult]
    next_cursor: str | None

    @classmethod
    def from_json(cls, obj: JSON) -> SearchPage:
        return cls(
            results=[SearchResult.from_json(r) for r in obj["results"]],
            next_cursor=obj.get("nextCursor"),
        )


@dataclass(frozen=True)
class AuditEvent:
    id: str
    type: str
    agent_id: str | None
    payload: JSON
    created_at: datetime

    @classmethod
    def from_json(cls, obj: JSON) -> AuditEvent:
        return cls(
            id=str(obj["id"]),
            type=obj["type"],
            agent_id=None if obj.get("agentId") is None else str(obj["agentId"]),
            payload=dict(obj.get("payload") or {}),
            created_at=_req_time(obj["createdAt"]),
        )


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None

    @classmethod
    def from_json(cls, obj: JSON) -> AuditPage:
        return cls(
            events=[AuditEvent.from_json(e) for e in obj["events"]],
            next_cursor=obj.get("nextCursor"),
        )


@dataclass(frozen=True)
class ReadMark:
    """The caller's read marker in a room: messages up to ``last_read_seq`` are read."""

    room_id: str
    last_read_seq: int

    @classmethod
    def from_json(cls, obj: JSON) -> ReadMark:
        return cls(room_id=str(obj["roomId"]), last_read_seq=int(obj["lastReadSeq"]))


@dataclass(frozen=True)
class InboxEntry:
    room: Room
    unread_count: int
    unread_mentions: int
    last_message: Message | None

    @classmethod
    def from_json(cls, obj: JSON) -> InboxEntry:
        last = obj.get("lastMessage")
        return cls(
            room=Room.from_json(obj["room"]),
            unread_count=int(obj["unreadCount"]),
            unread_mentions=int(obj["unreadMentions"]),
            last_message=None if last is None else Message.from_json(last),
        )


@dataclass(frozen=True)
class Inbox:
    """The caller's rooms with something unread, most recently active first."""

    rooms: list[InboxEntry]
    total_unread: int

    @classmethod
    def from_json(cls, obj: JSON) -> Inbox:
        return cls(
            rooms=[InboxEntry.from_json(r) for r in obj["rooms"]],
            total_unread=int(obj.get("totalUnread", 0)),
        )


@dataclass(frozen=True)
class Event:
    """One event of ``subscribe()``.

    ``name`` is the server's event name: ``message:new`` (``message`` set; yielded exactly
    once per room and seq, in seq order, live or caught up), ``mention:new`` (``message`` set:
    a message that mentions the caller, yielded right after its ``message:new``),
    ``message:redacted``, ``room:updated`` (``room`` set), ``presence:update``,
    ``read:update``. ``room_id`` is the room it concerns; ``data`` the payload as sent.
    """

    name: str
    room_id: str | None
    data: JSON
    message: Message | None = None
    room: Room | None = None
