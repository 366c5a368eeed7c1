"""The objects services return; ``to_dict`` is their wire form (``agenthub.wire``)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agenthub import wire
from agenthub.domain import DEFAULT_MESSAGE_KIND
from agenthub.store.db import Row
from agenthub.wire import iso as iso  # re-exported: the socket layer writes timestamps with it


@dataclass(frozen=True)
class Agent:
    id: uuid.UUID
    name: str
    display_name: str
    role: str
    disabled: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> Agent:
        return cls(
            id=row["id"],
            name=row["name"],
            display_name=row["display_name"],
            role=row["role"],
            disabled=row["disabled_at"] is not None,
            created_at=row["created_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.AGENT.serialize(self)


@dataclass(frozen=True)
class TokenInfo:
    prefix: str
    agent_id: uuid.UUID
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> TokenInfo:
        return cls(
            prefix=row["prefix"],
            agent_id=row["agent_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            revoked_at=row["revoked_at"],
            last_used_at=row["last_used_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.TOKEN_INFO.serialize(self)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    prefix: str
    agent_id: uuid.UUID
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return wire.ISSUED_TOKEN.serialize(self)


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: datetime
    agent: Agent

    def to_dict(self) -> dict[str, Any]:
        return wire.SESSION.serialize(self)


@dataclass(frozen=True)
class Room:
    id: uuid.UUID
    slug: str
    name: str
    visibility: str
    created_by: uuid.UUID | None
    last_seq: int
    created_at: datetime
    member: bool
    kind: str
    topic: str
    archived: bool
    # The viewer's read state: set for a member, None for anyone else (and in what is sent to
    # every member alike, such as room:updated).
    last_read_seq: int | None = None
    unread_count: int | None = None
    unread_mentions: int | None = None

    @classmethod
    def from_row(cls, row: Row, member: bool) -> Room:
        """A member's room carries its read state: the row must hold ``last_read_seq``,
        ``unread_count`` and ``unread_mentions`` (``store.rooms.NEW_MEMBER`` for a room just
        joined or created)."""
        return cls(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            visibility=row["visibility"],
            created_by=row["created_by"],
            last_seq=int(row["last_seq"]),
            created_at=row["created_at"],
            member=member,
            kind=row["kind"],
            topic=row["topic"],
            archived=row["archived_at"] is not None,
            last_read_seq=int(row["last_read_seq"]) if member else None,
            unread_count=int(row["unread_count"]) if member else None,
            unread_mentions=int(row["unread_mentions"]) if member else None,
        )

    def shared(self) -> Room:
        """The room as every member may be told it (``room:updated``): a member's room,
        without anyone's read state."""
        return dataclasses.replace(
            self, member=True, last_read_seq=None, unread_count=None, unread_mentions=None
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.ROOM.serialize(self)


@dataclass(frozen=True)
class Member:
    agent_id: uuid.UUID
    name: str
    display_name: str
    role: str
    joined_at: datetime
    online: bool = False

    @classmethod
    def from_row(cls, row: Row) -> Member:
        return cls(
            agent_id=row["agent_id"],
            name=row["name"],
            display_name=row["display_name"],
            role=row["role"],
            joined_at=row["joined_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.MEMBER.serialize(self)


@dataclass(frozen=True)
class Message:
    id: uuid.UUID
    room_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    body: str
    client_msg_id: str | None
    created_at: datetime
    kind: str = DEFAULT_MESSAGE_KIND
    data: dict[str, Any] | None = None
    reply_to: int | None = None
    thread_root: int | None = None
    mentions: tuple[uuid.UUID, ...] = ()
    mentions_room: bool = False
    edited_at: datetime | None = None
    redacted_at: datetime | None = None
    reply_count: int = 0  # replies to it, when it is a thread's root (listings count them)
    room_slug: str | None = None  # known where the query joined the room; not on the wire

    @classmethod
    def from_row(cls, row: Row) -> Message:
        return cls(
            id=row["id"],
            room_id=row["room_id"],
            seq=int(row["seq"]),
            sender_id=row["sender_id"],
            body=row["body"],
            client_msg_id=row["client_msg_id"],
            created_at=row["created_at"],
            kind=row["kind"],
            data=row["data"],
            reply_to=row["reply_to"],
            thread_root=row["thread_root"],
            mentions=tuple(row["mentions"]),
            mentions_room=row["mentions_room"],
            edited_at=row["edited_at"],
            redacted_at=row["redacted_at"],
            reply_count=int(row.get("reply_count") or 0),
            room_slug=row.get("room_slug"),
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.message_dict(self)


@dataclass(frozen=True)
class ReadMark:
    """A member's read marker in a room, as ``PUT /rooms/{id}/read`` and ``room:read`` answer
    it and ``read:update`` announces it."""

    room_id: uuid.UUID
    last_read_seq: int

    def to_dict(self) -> dict[str, Any]:
        return wire.READ_MARK.serialize(self)


@dataclass(frozen=True)
class InboxEntry:
    """A room of the caller's with something unread."""

    room: Room
    last_message: Message | None

    @property
    def unread_count(self) -> int:
        return self.room.unread_count or 0

    @property
    def unread_mentions(self) -> int:
        return self.room.unread_mentions or 0


@dataclass(frozen=True)
class Inbox:
    rooms: list[InboxEntry]

    @property
    def total_unread(self) -> int:
        return sum(entry.unread_count for entry in self.rooms)

    def to_dict(self) -> dict[str, Any]:
        return wire.INBOX.serialize(self)


@dataclass(frozen=True)
class AuditEvent:
    id: uuid.UUID
    type: str
    agent_id: uuid.UUID | None
    payload: dict[str, Any]
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row) -> AuditEvent:
        return cls(
            id=row["id"],
            type=row["type"],
            agent_id=row["agent_id"],
            payload=row["payload"],
            created_at=row["created_at"],
        )

    def to_dict(self) -> dict[str, Any]:
        return wire.AUDIT_EVENT.serialize(self)
