"""Messages: post (acknowledged only after commit) and read back by seq."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from agenthub import cursors
from agenthub.actors import Principal
from agenthub.domain import MAX_CLIENT_MSG_ID, PageBounds, check_seq
from agenthub.errors import Conflict, Forbidden, PayloadTooLarge, ValidationFailed
from agenthub.events import EventBus
from agenthub.models import Message
from agenthub.services.rooms import load_visible_room
from agenthub.store import messages as message_store
from agenthub.store import rooms as room_store
from agenthub.store.db import Database, Row, UniqueViolation


@dataclass(frozen=True)
class PostResult:
    message: Message
    created: bool  # False: a retried clientMsgId returned the stored message


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    next_cursor: str | None
    has_more: bool


class MessageService:
    def __init__(
        self, db: Database, bus: EventBus, *, max_body_chars: int, pages: PageBounds
    ) -> None:
        self._db = db
        self._bus = bus
        self._max_body = max_body_chars
        self._pages = pages

    def _check_body(self, body: str, client_msg_id: str | None) -> None:
        if not body.strip():
            raise ValidationFailed("message body is empty", {"body": "must not be empty"})
        if len(body) > self._max_body:
            raise PayloadTooLarge(
                f"message body exceeds {self._max_body} characters",
                {"body": f"at most {self._max_body} characters", "limit": self._max_body},
            )
        if "\x00" in body:
            raise ValidationFailed("message body contains NUL", {"body": "NUL is not allowed"})
        if client_msg_id is not None and not (
            0 < len(client_msg_id) <= MAX_CLIENT_MSG_ID and "\x00" not in client_msg_id
        ):
            raise ValidationFailed(
                "invalid clientMsgId", {"clientMsgId": f"1-{MAX_CLIENT_MSG_ID} characters"}
            )

    async def post_message(
        self,
        principal: Principal,
        room_id: uuid.UUID,
        body: str,
        client_msg_id: str | None = None,
    ) -> PostResult:
        self._check_body(body, client_msg_id)
        # The slot tells the bus a post into this room is in flight: a message of the room
        # committed meanwhile waits for this one's outcome, so listeners get seq order. The
        # fan-out itself runs in the background; the caller's reply does not wait for it.
        with self._bus.reserve(room_id) as slot:
            result = await self._insert_as_member(principal, room_id, body, client_msg_id)
            if result is None:
                result = await self._insert_or_explain(principal, room_id, body, client_msg_id)
            if result.created:
                slot.complete(result.message)
        return result

    async def _insert_as_member(
        self, principal: Principal, room_id: uuid.UUID, body: str, client_msg_id: str | None
    ) -> PostResult | None:
        """The common case in one round trip: a member posts a new message. The statement is
        its own transaction (autocommit session), and its conditions carry the membership
        rule. None when it stored nothing (not a member, no such room, a retried
        clientMsgId, or a concurrent retry that hit the unique constraint)."""
        try:
            async with self._db.session() as s:
                row = await message_store.insert_next(
                    s,
                    room_id=room_id,
                    sender_id=principal.agent_id,
                    body=body,
                    client_msg_id=client_msg_id,
                )
        except UniqueViolation:
            return None
        return None if row is None else PostResult(Message.from_row(row), created=True)

    async def _insert_or_explain(
        self, principal: Principal, room_id: uuid.UUID, body: str, client_msg_id: str | None
    ) -> PostResult:
        """The careful path, step by step in one transaction: says why a post was refused
        (404, 403, 409), returns the stored message for a retried clientMsgId, and stores the
        message if the caller became a member in the meantime."""
        try:
            return await self._insert(principal, room_id, body, client_msg_id)
        except UniqueViolation:
            # A concurrent retry with the same clientMsgId committed first.
            assert client_msg_id is not None
            async with self._db.session() as s:
                row = await message_store.by_client_msg_id(s, principal.agent_id, client_msg_id)
            if row is None:
                raise
            return PostResult(Message.from_row(row), created=False)

    async def _insert(
        self, principal: Principal, room_id: uuid.UUID, body: str, client_msg_id: str | None
    ) -> PostResult:
        async with self._db.transaction() as s:
            await load_visible_room(s, principal, room_id)
            if not await room_store.is_member(s, room_id, principal.agent_id):
                raise Forbidden("only room members may post to this room")
            row = await message_store.insert_next(
                s,
                room_id=room_id,
                sender_id=principal.agent_id,
                body=body,
                client_msg_id=client_msg_id,
            )
            if row is None:
                # Not stored although the caller is a member: the clientMsgId was used before
                # (insert_next's guard), or the membership went since the check above.
                if client_msg_id is not None:
                    existing = await message_store.by_client_msg_id(
                        s, principal.agent_id, client_msg_id
                    )
                    if existing is not None:
                        return _retried(existing, room_id)
                raise Forbidden("only room members may post to this room")
        return PostResult(Message.from_row(row), created=True)

    async def list_messages(
        self,
        principal: Principal,
        room_id: uuid.UUID,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after_seq: int | None = None,
        after_field: str = "after",
    ) -> MessagePage:
        """Newest first from ``cursor``; or, with ``after_seq``, oldest first after it.
        ``limit`` None means the default page size; ``after_field`` is what the caller's
        transport calls ``after_seq`` (error details name it)."""
        limit = self._pages.limit(limit)
        check_seq(after_seq, after_field)
        if cursor is not None and after_seq is not None:
            raise ValidationFailed(
                f"cursor and {after_field} cannot be combined",
                {after_field: f"use either cursor or {after_field}"},
            )
        scope = str(room_id)
        before = cursors.decode(cursor, "messages", scope) if cursor else None
        async with self._db.session() as s:
            await load_visible_room(s, principal, room_id)
            if not await room_store.is_member(s, room_id, principal.agent_id):
                raise Forbidden("only room members may read this room's messages")
            if after_seq is not None:
                rows = await message_store.after(s, room_id, after_seq=after_seq, limit=limit + 1)
            else:
                rows = await message_store.newest_first(
                    s, room_id, before_seq=before, limit=limit + 1
                )
        has_more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if has_more and after_seq is None and rows:
            next_cursor = cursors.encode("messages", scope, int(rows[-1]["seq"]))
        return MessagePage([Message.from_row(r) for r in rows], next_cursor, has_more)


def _retried(existing: Row, room_id: uuid.UUID) -> PostResult:
    """The answer to a send whose clientMsgId the sender already used."""
    if existing["room_id"] != room_id:
        raise Conflict(
            "clientMsgId was already used in another room",
            {"clientMsgId": "already used in another room"},
        )
    return PostResult(Message.from_row(existing), created=False)
