"""The objects services return; ``to_dict`` is the one wire form for REST and sockets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agenthub.store.db import Row


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


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
        return {
            "id": str(self.id),
            "name": self.name,
            "displayName": self.display_name,
            "role": self.role,
            "disabled": self.disabled,
            "createdAt": iso(self.created_at),
        }


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
        return {
            "prefix": self.prefix,
            "agentId": str(self.agent_id),
            "createdAt": iso(self.created_at),
            "expiresAt": iso(self.expires_at),
            "revokedAt": iso(self.revoked_at),
            "lastUsedAt": iso(self.last_used_at),
        }


@dataclass(frozen=True)
class IssuedToken:
    token: str
    prefix: str
    agent_id: uuid.UUID
    expires_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "prefix": self.prefix,
            "agentId": str(self.agent_id),
            "expiresAt": iso(self.expires_at),
        }


@dataclass(frozen=True)
class SessionToken:
    token: str
    expires_at: datetime
    agent: Agent

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "expiresAt": iso(self.expires_at),
            "agent": self.agent.to_dict(),
        }


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

    @classmethod
    def from_row(cls, row: Row, member: bool) -> Room:
        return cls(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            visibility=row["visibility"],
            created_by=row["created_by"],
            last_seq=int(row["last_seq"]),
            created_at=row["created_at"],
            member=member,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "slug": self.slug,
            "name": self.name,
            "visibility": self.visibility,
            "createdBy": None if self.created_by is None else str(self.created_by),
            "lastSeq": self.last_seq,
            "createdAt": iso(self.created_at),
            "member": self.member,
        }


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
        return {
            "agentId": str(self.agent_id),
            "name": self.name,
            "displayName": self.display_name,
            "role": self.role,
            "joinedAt": iso(self.joined_at),
            "online": self.online,
        }


@dataclass(frozen=True)
class Message:
    id: uuid.UUID
    room_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID
    body: str
    client_msg_id: str | None
    created_at: datetime

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
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "roomId": str(self.room_id),
            "seq": self.seq,
            "senderId": str(self.sender_id),
            "body": self.body,
            "clientMsgId": self.client_msg_id,
            "createdAt": iso(self.created_at),
        }


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
        return {
            "id": str(self.id),
            "type": self.type,
            "agentId": None if self.agent_id is None else str(self.agent_id),
            "payload": self.payload,
            "createdAt": iso(self.created_at),
        }
