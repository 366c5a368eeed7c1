"""Messages: post (acknowledged only after commit), read back by seq (the room, a thread, a
kind), and redact."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from agenthub import cursors
from agenthub.actors import Principal
from agenthub.domain import (
    DEFAULT_MESSAGE_KIND,
    MAX_CLIENT_MSG_ID,
    MAX_DATA_BYTES,
    MAX_SEQ,
    MESSAGE_KIND_PATTERN,
    MESSAGE_KIND_RE,
    PageBounds,
    check_seq,
)
from agenthub.errors import (
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    RoomArchived,
    ValidationFailed,
)
from agenthub.events import EventBus, MessageRedacted
from agenthub.group_commit import GroupCommit
from agenthub.models import Message
from agenthub.services.audit import record
from agenthub.services.directory import Directory, RoomRef
from agenthub.services.rooms import load_visible_room
from agenthub.store import messages as message_store
from agenthub.store import rooms as room_store
from agenthub.store.db import Database, Row, Session, UniqueViolation
from agenthub.waiters import Waiters, Watch

# Posts into one room written by one statement at most (agenthub.group_commit).
MAX_POST_BATCH = 64


@dataclass(frozen=True)
class PostResult:
    message: Message
    created: bool  # False: a retried clientMsgId returned the stored message


# What a group-committed write answers each post: stored, not stored (None: the careful path
# says why), or the error that failed it alone.
_Written = PostResult | Exception | None


@dataclass(frozen=True)
class MessagePage:
    messages: list[Message]
    next_cursor: str | None
    has_more: bool


class MessageService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        directory: Directory,
        *,
        max_body_chars: int,
        pages: PageBounds,
        waiters: Waiters,
        max_wait_seconds: float,
        max_batch: int = MAX_POST_BATCH,
    ) -> None:
        self._db = db
        self._bus = bus
        self._directory = directory
        self._max_body = max_body_chars
        self._pages = pages
        self._waiters = waiters
        self._max_wait = max_wait_seconds
        # One write in flight per room; the posts arriving meanwhile go together next.
        self._group: GroupCommit[uuid.UUID, tuple[Principal, NewPost], _Written] = GroupCommit(
            self._insert_batch, max_batch=max_batch
        )

    def _check_post(self, post: NewPost) -> None:
        body, data = post.body, post.data
        if not body.strip() and data is None:
            raise ValidationFailed(
                "message body is empty", {"body": ["must not be empty unless data is given"]}
            )
        if len(body) > self._max_body:
            raise PayloadTooLarge(
                f"message body exceeds {self._max_body} characters",
                {"body": f"at most {self._max_body} characters", "limit": self._max_body},
            )
        if "\x00" in body:
            raise ValidationFailed("message body contains NUL", {"body": "NUL is not allowed"})
        client_msg_id = post.client_msg_id
        if client_msg_id is not None and not (
            0 < len(client_msg_id) <= MAX_CLIENT_MSG_ID and "\x00" not in client_msg_id
        ):
            raise ValidationFailed(
                "invalid clientMsgId", {"clientMsgId": f"1-{MAX_CLIENT_MSG_ID} characters"}
            )
        if not MESSAGE_KIND_RE.match(post.kind):
            raise ValidationFailed("invalid kind", {"kind": [f"must match {MESSAGE_KIND_PATTERN}"]})
        if post.reply_to is not None and not 1 <= post.reply_to <= MAX_SEQ:
            raise ValidationFailed("invalid replyTo", {"replyTo": [f"a seq, 1 to {MAX_SEQ}"]})
        if data is not None:
            try:
                text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            except ValueError:
                # A socket client's JSON may carry NaN or Infinity; jsonb stores neither.
                raise ValidationFailed(
                    "data holds NaN or Infinity", {"data": ["numbers must be finite"]}
                ) from None
            if len(text.encode()) > MAX_DATA_BYTES:
                raise PayloadTooLarge(
                    f"data exceeds {MAX_DATA_BYTES} bytes serialized",
                    {"data": [f"at most {MAX_DATA_BYTES} bytes as JSON"], "limit": MAX_DATA_BYTES},
                )
            if _holds_nul(data):  # PostgreSQL's jsonb cannot store \u0000 anywhere
                raise ValidationFailed(
                    "data contains NUL", {"data": ["no NUL character in keys or strings"]}
                )

    async def post_message(
        self,
        principal: Principal,
        room: RoomRef,
        body: str,
        client_msg_id: str | None = None,
        *,
        kind: str = DEFAULT_MESSAGE_KIND,
        data: dict[str, Any] | None = None,
        reply_to: int | None = None,
    ) -> PostResult:
        post = NewPost(body, client_msg_id, kind, data, reply_to, *mentioned_names(body))
        self._check_post(post)
        room_id = await self._directory.room_id(room)
        # The slot tells the bus a post into this room is in flight: a message of the room
        # committed meanwhile waits for this one's outcome, so listeners get seq order. The
        # fan-out itself runs in the background; the caller's reply does not wait for it.
        with self._bus.reserve(room_id) as slot:
            written = await self._group.submit(room_id, (principal, post))
            if isinstance(written, Exception):
                raise written
            result = written
            if result is None:
                result = await self._insert_or_explain(principal, room_id, post)
            if result.created:
                slot.complete(result.message)
        return result

    async def _insert_batch(
        self, room_id: uuid.UUID, batch: Sequence[tuple[Principal, NewPost]]
    ) -> list[_Written]:
        """The common case, for the posts into one room gathered while the previous write was
        in flight (``agenthub.group_commit``): members post new messages, all stored by one
        statement that is its own transaction (autocommit session), its conditions carrying
        the rules. None for a post it did not store (not a member, no such room, an archived
        room, an unknown replyTo or one of the same batch, a retried clientMsgId, or one used
        twice in the batch): the careful path says why, or returns the stored message."""
        stored: list[_Written] = [None] * len(batch)
        # Two posts of a batch with one sender's clientMsgId: only the first is written here
        # (the second would fail the whole statement on the unique constraint); the second
        # then finds it stored, as a retry does.
        seen: set[tuple[uuid.UUID, str]] = set()
        chosen: list[int] = []
        for i, (principal, post) in enumerate(batch):
            if post.client_msg_id is not None:
                key = (principal.agent_id, post.client_msg_id)
                if key in seen:
                    continue
                seen.add(key)
            chosen.append(i)
        rows: Sequence[Row | Exception | None]
        try:
            async with self._db.session() as s:
                rows = await message_store.insert_batch(
                    s, room_id, [_new_message(*batch[i]) for i in chosen]
                )
        except (UniqueViolation, message_store.BatchRefused):
            if len(chosen) == 1:
                return stored  # a concurrent retry: the careful path returns what it stored
            # A clientMsgId committed meanwhile (by another room's batch, another process), or
            # a value the database refused: the statement wrote nothing. Post by post, so that
            # one post's failure is its own.
            rows = [await self._insert_one(room_id, *batch[i]) for i in chosen]
        for i, row in zip(chosen, rows, strict=True):
            if isinstance(row, Exception):
                stored[i] = row
            elif row is not None:
                stored[i] = PostResult(Message.from_row(row), created=True)
        return stored

    async def _insert_one(
        self, room_id: uuid.UUID, principal: Principal, post: NewPost
    ) -> Row | Exception | None:
        """One post of a batch the database refused as a whole: its row, None (the careful
        path finds out why), or the error that fails this post alone (a value the database
        refuses, or a database that went away meanwhile)."""
        try:
            async with self._db.session() as s:
                return await message_store.insert_next(s, room_id, _new_message(principal, post))
        except UniqueViolation:
            return None
        except Exception as exc:
            return exc

    async def _insert_or_explain(
        self, principal: Principal, room_id: uuid.UUID, post: NewPost
    ) -> PostResult:
        """The careful path, step by step in one transaction: says why a post was refused
        (404, 403, 409, 400), returns the stored message for a retried clientMsgId, and stores
        the message if the caller became a member in the meantime."""
        try:
            return await self._insert(principal, room_id, post)
        except UniqueViolation:
            # A concurrent retry with the same clientMsgId committed first.
            assert post.client_msg_id is not None
            async with self._db.session() as s:
                row = await message_store.by_client_msg_id(
                    s, principal.agent_id, post.client_msg_id
                )
            if row is None:
                raise
            return PostResult(Message.from_row(row), created=False)

    async def _insert(self, principal: Principal, room_id: uuid.UUID, post: NewPost) -> PostResult:
        async with self._db.transaction() as s:
            room = await load_visible_room(s, principal, room_id)
            if not await room_store.is_member(s, room_id, principal.agent_id):
                raise Forbidden("only room members may post to this room")
            if post.client_msg_id is not None:
                # A retry is answered with what was stored, even once the room is archived.
                existing = await message_store.by_client_msg_id(
                    s, principal.agent_id, post.client_msg_id
                )
                if existing is not None:
                    return _retried(existing, room_id)
            if room["archived_at"] is not None:
                raise RoomArchived("the room is archived: reading works, posting does not")
            if post.reply_to is not None and not await message_store.exists(
                s, room_id, post.reply_to
            ):
                raise ValidationFailed(
                    "replyTo names no message of this room",
                    {"replyTo": [f"no message with seq {post.reply_to} in this room"]},
                )
            row = await message_store.insert_next(s, room_id, _new_message(principal, post))
            if row is None:
                # Every rule the statement checks held a moment ago: the membership went
                # since, or the room was archived since.
                raise Forbidden("only room members may post to this room")
        return PostResult(Message.from_row(row), created=True)

    async def list_messages(
        self,
        principal: Principal,
        room: RoomRef,
        *,
        limit: int | None = None,
        cursor: str | None = None,
        after_seq: int | None = None,
        after_field: str = "after",
        thread: int | None = None,
        kind: str | None = None,
        wait: float = 0.0,
    ) -> MessagePage:
        """Newest first from ``cursor``; or, with ``after_seq``, oldest first after it.
        ``thread`` (a root's seq) narrows it to that thread, oldest first (after ``after_seq``
        when given); ``kind`` to the messages of that kind. ``limit`` None means the default
        page size; ``after_field`` is what the caller's transport calls ``after_seq`` (error
        details name it).

        ``wait`` (seconds, with ``after_seq`` only): when nothing (of the thread, of the kind)
        is after ``after_seq``, wait up to that long for a message to arrive, holding no
        database connection meanwhile (``agenthub.waiters``); the page is empty if none did,
        or if the server began shutting down."""
        limit = self._pages.limit(limit)
        check_seq(after_seq, after_field)
        _check_filters(thread, kind)
        self._check_wait(wait, after_seq, after_field)
        if cursor is not None and after_seq is not None:
            raise ValidationFailed(
                f"cursor and {after_field} cannot be combined",
                {after_field: f"use either cursor or {after_field}"},
            )
        if cursor is not None and thread is not None:
            raise ValidationFailed(
                "a thread is read oldest first: page it with after, not cursor",
                {"cursor": [f"not with thread; use {after_field}"]},
            )
        room_id = await self._directory.room_id(room)
        # A cursor belongs to its listing: the room's, or the room's messages of one kind.
        scope = str(room_id) if kind is None else f"{room_id}/kind={kind}"
        before = cursors.decode(cursor, "messages", scope) if cursor else None

        async def read(watch: Watch) -> MessagePage:
            async with self._db.session() as s:
                await self._check_reader(s, principal, room_id)
                # A member from here on: watched before the read, so a message committed
                # after the read wakes the wait (agenthub.waiters).
                watch.watch_rooms((room_id,))
                if thread is not None:
                    await _check_thread_root(s, room_id, thread)
                    rows = await message_store.thread(
                        s, room_id, thread, after_seq=after_seq or 0, limit=limit + 1, kind=kind
                    )
                elif after_seq is not None:
                    rows = await message_store.after(
                        s, room_id, after_seq=after_seq, limit=limit + 1, kind=kind
                    )
                else:
                    rows = await message_store.newest_first(
                        s, room_id, before_seq=before, limit=limit + 1, kind=kind
                    )
            has_more = len(rows) > limit
            rows = rows[:limit]
            next_cursor = None
            if has_more and after_seq is None and thread is None and rows:
                next_cursor = cursors.encode("messages", scope, int(rows[-1]["seq"]))
            return MessagePage([Message.from_row(r) for r in rows], next_cursor, has_more)

        return await self._waiters.poll(
            read,
            found=lambda page: bool(page.messages),
            seconds=wait,
            accept=_listed(thread, kind),
        )

    def _check_wait(self, wait: float, after_seq: int | None, after_field: str) -> None:
        if not 0 <= wait <= self._max_wait:
            raise ValidationFailed(
                "invalid wait", {"wait": [f"seconds to wait, 0 to {self._max_wait:g}"]}
            )
        if wait > 0 and after_seq is None:
            raise ValidationFailed(
                f"wait needs {after_field}: it waits for messages after a seq",
                {"wait": [f"only with {after_field}"]},
            )

    async def get_message(self, principal: Principal, room: RoomRef, seq: int) -> Message:
        """One message of the room, as listings show it (members only)."""
        _check_path_seq(seq)
        room_id = await self._directory.room_id(room)
        async with self._db.session() as s:
            await self._check_reader(s, principal, room_id)
            row = await message_store.one(s, room_id, seq)
        if row is None:
            raise NotFound(f"no message with seq {seq} in this room")
        return Message.from_row(row)

    async def redact_message(self, principal: Principal, room: RoomRef, seq: int) -> bool:
        """Make a message a tombstone: ``body`` "", ``data`` null, ``redactedAt`` set, no
        mentions (its mention rows go too, so it notifies nobody any more); seq, sender, kind,
        thread and times stay. Its sender or an admin may, while a member of the room. True
        when it was redacted now; False when it already was a tombstone (nothing changes, no
        second audit event or broadcast: a retried DELETE is answered alike)."""
        _check_path_seq(seq)
        room_id = await self._directory.room_id(room)
        async with self._db.transaction() as s:
            await load_visible_room(s, principal, room_id)
            if not await room_store.is_member(s, room_id, principal.agent_id):
                raise Forbidden("only room members may redact messages in this room")
            target = await message_store.summary(s, room_id, seq)
            if target is None:
                raise NotFound(f"no message with seq {seq} in this room")
            if not principal.is_admin and not principal.is_agent(target["sender_id"]):
                raise Forbidden("only the message's sender or an admin may redact it")
            redacted = await message_store.redact(s, room_id, seq)
            if redacted:
                await record(
                    s,
                    "message-redacted",
                    principal.agent_id,
                    roomId=str(room_id),
                    messageId=str(target["id"]),
                    seq=seq,
                    senderId=str(target["sender_id"]),
                )
        if redacted:
            self._bus.publish_after(room_id, seq, MessageRedacted(room_id=room_id, seq=seq))
        return redacted

    async def _check_reader(self, s: Session, principal: Principal, room_id: uuid.UUID) -> None:
        """Members read a room: others get 404 for a private room, 403 for a public one."""
        await load_visible_room(s, principal, room_id)
        if not await room_store.is_member(s, room_id, principal.agent_id):
            raise Forbidden("only room members may read this room's messages")


def _check_filters(thread: int | None, kind: str | None) -> None:
    if thread is not None and not 1 <= thread <= MAX_SEQ:
        raise ValidationFailed("invalid thread", {"thread": [f"a seq, 1 to {MAX_SEQ}"]})
    if kind is not None and not MESSAGE_KIND_RE.match(kind):
        raise ValidationFailed("invalid kind", {"kind": [f"must match {MESSAGE_KIND_PATTERN}"]})


def _listed(thread: int | None, kind: str | None) -> Callable[[Message], bool] | None:
    """Which new messages a waiting listing would show: of the thread (a reply to its root:
    the root itself is older than any wait), of the kind. None: any message of the room."""
    if thread is None and kind is None:
        return None

    def listed(message: Message) -> bool:
        return (thread is None or message.thread_root == thread) and (
            kind is None or message.kind == kind
        )

    return listed


def _check_path_seq(seq: int) -> None:
    if not 1 <= seq <= MAX_SEQ:
        raise ValidationFailed("invalid seq", {"seq": [f"a seq, 1 to {MAX_SEQ}"]})


async def _check_thread_root(s: Session, room_id: uuid.UUID, seq: int) -> None:
    """A thread is named by its root: a message of the room that is no reply."""
    found = await message_store.summary(s, room_id, seq)
    if found is None:
        raise ValidationFailed(
            "thread names no message of this room",
            {"thread": [f"no message with seq {seq} in this room"]},
        )
    if found["thread_root"] is not None:
        root = int(found["thread_root"])
        raise ValidationFailed(
            "thread names a reply, not a thread's root",
            {"thread": [f"seq {seq} is a reply; its thread's root is seq {root}"]},
        )


@dataclass(frozen=True)
class NewPost:
    """What a post asks to store, checked before any database work."""

    body: str
    client_msg_id: str | None
    kind: str
    data: dict[str, Any] | None
    reply_to: int | None
    mention_names: list[str]
    mentions_room: bool


# "@name" where "@" starts the text or follows a non-word character (so "bob@example.com"
# mentions nobody), and the name ends where a name character no longer follows.
_MENTION_RE = re.compile(r"(?<!\w)@([a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)(?![a-z0-9])")
_ROOM_MENTION = "room"
_MAX_MENTIONS = 50  # distinct names looked up per message; more are left as text


def mentioned_names(body: str) -> tuple[list[str], bool]:
    """The distinct @names in ``body`` (in order of appearance) and whether it says @room."""
    names: dict[str, None] = {}
    mentions_room = False
    for match in _MENTION_RE.finditer(body):
        name = match.group(1)
        if name == _ROOM_MENTION:
            mentions_room = True
        elif len(names) < _MAX_MENTIONS:
            names[name] = None
    return list(names), mentions_room


def _new_message(principal: Principal, post: NewPost) -> message_store.NewMessage:
    return message_store.NewMessage(
        sender_id=principal.agent_id,
        body=post.body,
        client_msg_id=post.client_msg_id,
        kind=post.kind,
        data=post.data,
        reply_to=post.reply_to,
        mention_names=post.mention_names,
        mentions_room=post.mentions_room,
    )


def _holds_nul(value: Any) -> bool:
    """Whether a NUL character is in any key or string of a parsed JSON value (iterative: the
    JSON parser bounds the depth, not the call stack here)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def _retried(existing: Row, room_id: uuid.UUID) -> PostResult:
    """The answer to a send whose clientMsgId the sender already used."""
    if existing["room_id"] != room_id:
        raise Conflict(
            "clientMsgId was already used in another room",
            {"clientMsgId": "already used in another room"},
        )
    return PostResult(Message.from_row(existing), created=False)
